package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/helper/wrapping"
)

// UnwrapPath is the only path the unwrap server answers.
const UnwrapPath = "/v1/sys/wrapping/unwrap"

// invalidTokenMessage is the error text of a rejected unwrap.
const invalidTokenMessage = "wrapping token is not valid or does not exist"

// noteSecret, when set, is told about every secret this file creates: each
// private key (kind "private key", DER) and each wrapping token and token id
// (kind "unwrap token"). The test suite's secret-hygiene check sets it, so
// that it can look for them in everything the plugins print and return.
var noteSecret func(kind string, value []byte)

func notePrivateKey(key *ecdsa.PrivateKey) {
	if noteSecret == nil {
		return
	}
	if der, err := x509.MarshalECPrivateKey(key); err == nil {
		noteSecret("private key", der)
	}
}

// Fault changes how the next wrapped response is minted or served, so that
// tests can reproduce what a plugin meets when the unwrap goes wrong.
type Fault int

const (
	FaultNone Fault = iota
	// FaultExpired mints a token whose exp lies in the past; the server
	// treats it as unknown.
	FaultExpired
	// FaultConsumed mints a token that has already been unwrapped once.
	FaultConsumed
	// FaultUnreachable puts the address of a closed local port into addr.
	FaultUnreachable
	// FaultMalformed hands out a string that is not a JWT at all.
	FaultMalformed
	// FaultNoServerCert / FaultNoServerKey drop that key from the data the
	// server returns.
	FaultNoServerCert
	FaultNoServerKey
)

// UnwrapRequest is one request the unwrap server received.
type UnwrapRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Token  string // the token the server looked up ("" if none)
	Status int
}

type wrappedEntry struct {
	data    map[string]any
	expires time.Time
	used    bool
}

// UnwrapServer plays the part of Vault's response-wrapping store and its
// HTTPS sys/wrapping/unwrap endpoint: tokens are single-use ES512 JWTs
// signed with a P-521 key of its own, and the server certificate is issued
// by a CA of its own (CAFile holds its PEM).
type UnwrapServer struct {
	Server *httptest.Server
	CAFile string
	CAPEM  []byte

	signer *ecdsa.PrivateKey

	mu       sync.Mutex
	entries  map[string]*wrappedEntry
	requests []UnwrapRequest
	fault    Fault
	minted   []string
}

// NewUnwrapServer starts the HTTPS server; dir receives the CA file.
func NewUnwrapServer(dir string) (*UnwrapServer, error) {
	caPEM, serverCert, err := newServingChain("conformance unwrap CA")
	if err != nil {
		return nil, err
	}
	signer, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notePrivateKey(signer)
	caFile := filepath.Join(dir, "unwrap-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		return nil, err
	}
	u := &UnwrapServer{CAFile: caFile, CAPEM: caPEM, signer: signer, entries: map[string]*wrappedEntry{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	u.Server = srv
	return u, nil
}

// Addr is the value of the addr claim: the https URL of the server.
func (u *UnwrapServer) Addr() string { return u.Server.URL }

func (u *UnwrapServer) Close() { u.Server.Close() }

// SetFault applies f to every token minted from now on.
func (u *UnwrapServer) SetFault(f Fault) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fault = f
}

// Requests returns a copy of every request received so far.
func (u *UnwrapServer) Requests() []UnwrapRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]UnwrapRequest(nil), u.requests...)
}

// Minted returns every token handed out so far, oldest first.
func (u *UnwrapServer) Minted() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.minted...)
}

// Wrap stores data under a new single-use token valid for ttl. With jwt the
// token is an ES512 JWT carrying the server address, as Vault issues for
// plugin bootstrap; otherwise it is an opaque token.
func (u *UnwrapServer) Wrap(data map[string]any, ttl time.Duration, jwt bool) (*wrapping.ResponseWrapInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	id, err := base62.Random(24)
	if err != nil {
		return nil, err
	}
	id = "hvs." + id
	now := time.Now()
	entry := &wrappedEntry{data: map[string]any{}, expires: now.Add(ttl)}
	for k, v := range data {
		entry.data[k] = v
	}
	addr := u.Addr()
	iat := now
	switch u.fault {
	case FaultExpired:
		iat = now.Add(-2 * ttl)
		entry.expires = iat.Add(ttl)
	case FaultConsumed:
		entry.used = true
	case FaultUnreachable:
		if addr, err = closedAddr(); err != nil {
			return nil, err
		}
	case FaultNoServerCert:
		delete(entry.data, "ServerCert")
	case FaultNoServerKey:
		delete(entry.data, "ServerKey")
	}
	u.entries[id] = entry

	token := id
	if jwt {
		claims := map[string]any{
			"jti":      id,
			"iat":      iat.Unix(),
			"exp":      iat.Add(ttl).Unix(),
			"nbf":      now.Add(-5 * time.Second).Unix(),
			"type":     "wrapping",
			"accessor": "",
			"addr":     addr,
		}
		if token, err = signES512(u.signer, claims); err != nil {
			return nil, err
		}
	}
	if u.fault == FaultMalformed {
		token = "s.NotAJsonWebToken" + strings.TrimPrefix(id, "hvs.")
	}
	u.minted = append(u.minted, token)
	if noteSecret != nil {
		noteSecret("unwrap token", []byte(token))
		noteSecret("unwrap token", []byte(id))
		if k, ok := entry.data["ServerKey"].([]byte); ok {
			noteSecret("private key", k)
		}
	}
	info := &wrapping.ResponseWrapInfo{
		TTL:          ttl,
		Token:        token,
		CreationTime: iat,
		CreationPath: "sys/wrapping/wrap",
	}
	if jwt {
		info.Format = "jwt"
	}
	return info, nil
}

func (u *UnwrapServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := UnwrapRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	status, resp := u.answer(r, body, &rec)
	rec.Status = status
	u.mu.Lock()
	u.requests = append(u.requests, rec)
	u.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

func errorBody(msgs ...string) []byte {
	b, _ := json.Marshal(map[string]any{"errors": msgs})
	return b
}

func (u *UnwrapServer) answer(r *http.Request, body []byte, rec *UnwrapRequest) (int, []byte) {
	if r.URL.Path != UnwrapPath {
		return http.StatusNotFound, errorBody()
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, errorBody()
	}
	token := r.Header.Get("X-Vault-Token")
	if len(strings.TrimSpace(string(body))) > 0 {
		var req struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, errorBody("failed to parse JSON input: " + err.Error())
		}
		if req.Token != "" {
			token = req.Token
		}
	}
	if token == "" {
		return http.StatusBadRequest, errorBody(invalidTokenMessage)
	}
	rec.Token = token

	id := token
	if strings.Count(token, ".") == 2 {
		claims, err := verifyES512(&u.signer.PublicKey, token)
		if err != nil || claims["type"] != "wrapping" {
			return http.StatusBadRequest, errorBody(invalidTokenMessage)
		}
		jti, _ := claims["jti"].(string)
		id = jti
	}

	u.mu.Lock()
	entry := u.entries[id]
	valid := entry != nil && !entry.used && time.Now().Before(entry.expires)
	if valid {
		entry.used = true
	}
	u.mu.Unlock()
	if !valid {
		return http.StatusBadRequest, errorBody(invalidTokenMessage)
	}

	requestID, err := randomUUID()
	if err != nil {
		return http.StatusInternalServerError, errorBody(err.Error())
	}
	out, err := json.Marshal(map[string]any{
		"request_id":     requestID,
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           entry.data,
		"wrap_info":      nil,
		"warnings":       nil,
		"auth":           nil,
	})
	if err != nil {
		return http.StatusInternalServerError, errorBody(err.Error())
	}
	return http.StatusOK, out
}

// signES512 builds a compact JWS: ES512 signatures are the fixed-width
// big-endian r and s (66 bytes each for P-521) concatenated.
func signES512(key *ecdsa.PrivateKey, claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "ES512", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	digest := sha512.Sum512([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", err
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return signingInput + "." + enc.EncodeToString(sig), nil
}

// verifyES512 checks a compact JWS made by signES512 and returns its claims.
func verifyES512(pub *ecdsa.PublicKey, token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	enc := base64.RawURLEncoding
	rawHeader, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, err
	}
	var header map[string]any
	if err := json.Unmarshal(rawHeader, &header); err != nil {
		return nil, err
	}
	if header["alg"] != "ES512" {
		return nil, fmt.Errorf("unexpected alg %v", header["alg"])
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return nil, errors.New("bad signature length")
	}
	digest := sha512.Sum512([]byte(parts[0] + "." + parts[1]))
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return nil, errors.New("bad signature")
	}
	rawClaims, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(rawClaims, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// DecodeJWT splits a compact JWS into its decoded header and claims without
// checking the signature, and returns the raw signature bytes.
func DecodeJWT(token string) (header, claims map[string]any, sig []byte, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, nil, fmt.Errorf("%d segments, want 3", len(parts))
	}
	enc := base64.RawURLEncoding
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := enc.DecodeString(parts[i])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("segment %d: %w", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, nil, nil, fmt.Errorf("segment %d: %w", i, err)
		}
	}
	if sig, err = enc.DecodeString(parts[2]); err != nil {
		return nil, nil, nil, fmt.Errorf("signature: %w", err)
	}
	return header, claims, sig, nil
}

// VerifyToken reports whether token carries a valid signature of this server.
func (u *UnwrapServer) VerifyToken(token string) error {
	_, err := verifyES512(&u.signer.PublicKey, token)
	return err
}

// closedAddr returns an https URL on a local port nobody listens on.
func closedAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return "https://" + addr, nil
}

func randomUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// NewCAPEM returns the PEM of a fresh self-signed CA, named cn, that signed
// nothing the unwrap server uses, for trust-failure tests.
func NewCAPEM(cn string) ([]byte, error) {
	caPEM, _, err := newServingChain(cn)
	return caPEM, err
}

// newServingChain makes a CA named cn and a server certificate for
// 127.0.0.1 and localhost issued by it.
func newServingChain(cn string) ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	notePrivateKey(caKey)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	notePrivateKey(leafKey)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, nil
}
