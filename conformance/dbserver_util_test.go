package conformance

import (
	"crypto/rand"
	"io"
)

func cryptoRead(b []byte) (int, error)              { return rand.Read(b) }
func ioReadFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }
