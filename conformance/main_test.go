package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/pluginutil"
)

// Path of the in-memory example plugin, and why it is missing if it is.
var (
	inmemBin string
	inmemErr error
)

func TestMain(m *testing.M) {
	inmemBin, inmemErr = locateInmem()
	os.Exit(m.Run())
}

// locateInmem honours DBPLUGIN_INMEM_BIN, else builds the example with cargo
// in the repository root (the parent of this module).
func locateInmem() (string, error) {
	if p := os.Getenv("DBPLUGIN_INMEM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DBPLUGIN_INMEM_BIN: %w", err)
		}
		return filepath.Abs(p)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(wd)
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		return "", fmt.Errorf("cargo not found and DBPLUGIN_INMEM_BIN unset: %w", err)
	}
	cmd := exec.Command(cargo, "build", "-p", "inmem-plugin")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cargo build -p inmem-plugin: %w", err)
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join(root, "target")
	} else if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	bin := filepath.Join(target, "debug", "inmem-plugin")
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// requireBinary fails under CI=true and skips otherwise when the plugin
// binary could not be located or built.
func requireBinary(t *testing.T) string {
	t.Helper()
	if inmemErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("inmem plugin unavailable: %v", inmemErr)
		}
		t.Skipf("inmem plugin unavailable: %v", inmemErr)
	}
	return inmemBin
}

// harness is a host catalog with its captured log, dumped on failure.
type harness struct {
	*Catalog
	Logs *LogBuffer
	t    *testing.T
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	logs := &LogBuffer{}
	h := &harness{Catalog: NewCatalog(NewLogger(logs)), Logs: logs, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	return h
}

// register adds the inmem binary under name with extra plugin env entries.
func (h *harness) register(name string, env ...string) {
	h.t.Helper()
	bin := requireBinary(h.t)
	sum, err := fileSHA256(bin)
	if err != nil {
		h.t.Fatal(err)
	}
	h.Register(&pluginutil.PluginRunner{
		Name:    name,
		Command: bin,
		Args:    []string{},
		Env:     env,
		Sha256:  sum,
	})
}

// open obtains a database client and registers its Close as cleanup
// (a second Close by the test itself is harmless).
func (h *harness) open(ctx context.Context, name string) *DB {
	h.t.Helper()
	db, err := h.OpenDatabase(ctx, name)
	if err != nil {
		h.t.Fatalf("open database %q: %v", name, err)
	}
	h.t.Cleanup(func() { _ = db.Close() })
	return db
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// snapshot mirrors the JSON file the inmem plugin writes.
type snapshot struct {
	Users map[string]snapshotUser `json:"users"`
}

type snapshotUser struct {
	CredentialType string   `json:"credential_type"`
	PasswordSHA256 string   `json:"password_sha256"`
	PublicKey      string   `json:"public_key"`
	Subject        string   `json:"subject"`
	Expiration     string   `json:"expiration"`
	Statements     []string `json:"statements"`
}

func readSnapshot(t *testing.T, path string) (snapshot, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	var s snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("decode snapshot %s: %v", raw, err)
	}
	return s, raw
}

func (s snapshot) user(t *testing.T, name string) snapshotUser {
	t.Helper()
	u, ok := s.Users[name]
	if !ok {
		t.Fatalf("snapshot has no user %q (users: %v)", name, keys(s.Users))
	}
	return u
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// processGone reports whether pid no longer names a live process.
func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still alive after %v", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasField(e map[string]any, key, want string) bool {
	v, ok := e[key].(string)
	return ok && v == want
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}
