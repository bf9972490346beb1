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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/pluginutil"
)

// Paths of the example plugins, and why they are missing if they are.
var (
	inmemBin   string
	inmemErr   error
	inmemV4Bin string
	inmemV4Err error
)

func TestMain(m *testing.M) {
	inmemBin, inmemErr = locateBinary("DBPLUGIN_INMEM_BIN", "inmem-plugin")
	inmemV4Bin, inmemV4Err = locateBinary("DBPLUGIN_INMEM_V4_BIN", "inmem-v4-plugin")
	code := m.Run()
	// Secret hygiene over the whole run (hygiene_test.go): every plugin
	// stderr line and every error returned to the host, against every secret.
	// go test ./... shows a passing package's output only with -v, so the
	// README test command asks for the verdict in a file as well.
	var out io.Writer = os.Stdout
	if path := os.Getenv("DBPLUGIN_HYGIENE_SUMMARY"); path != "" {
		if f, err := os.Create(path); err == nil {
			defer f.Close()
			out = io.MultiWriter(os.Stdout, f)
		}
	}
	if !hygiene.check(out) && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// locateBinary honours the env override, else returns the binary of the
// cargo package pkg (whose binary has the same name) from one
// `cargo build --workspace --bins` in the repository root, the parent of this
// module. Building every binary in one invocation gives them all the same
// feature resolution, so the runtime is compiled once rather than once per
// package (and matches what scripts/test-all builds first).
func locateBinary(envVar, pkg string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", envVar, err)
		}
		return filepath.Abs(p)
	}
	target, err := buildWorkspaceBins()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(target, "debug", pkg)
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	return bin, nil
}

var (
	buildOnce   sync.Once
	buildTarget string
	buildErr    error
)

// buildWorkspaceBins runs `cargo build --workspace --bins` once per test
// process and returns the cargo target directory.
func buildWorkspaceBins() (string, error) {
	buildOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(wd)
		cargo, err := exec.LookPath("cargo")
		if err != nil {
			buildErr = fmt.Errorf("cargo not found and no DBPLUGIN_*_BIN override set: %w", err)
			return
		}
		cmd := exec.Command(cargo, "build", "--workspace", "--bins")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("cargo build --workspace --bins: %w", err)
			return
		}
		buildTarget = os.Getenv("CARGO_TARGET_DIR")
		if buildTarget == "" {
			buildTarget = filepath.Join(root, "target")
		} else if !filepath.IsAbs(buildTarget) {
			buildTarget = filepath.Join(root, buildTarget)
		}
	})
	return buildTarget, buildErr
}

// requireBinary fails under CI=true and skips otherwise when the plugin
// binary could not be located or built.
func requireBinary(t *testing.T) string {
	t.Helper()
	return require(t, "inmem plugin", inmemBin, inmemErr)
}

// requireV4Binary is requireBinary for the v4 example plugin.
func requireV4Binary(t *testing.T) string {
	t.Helper()
	return require(t, "inmem-v4 plugin", inmemV4Bin, inmemV4Err)
}

func require(t *testing.T, what, bin string, err error) string {
	t.Helper()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s unavailable: %v", what, err)
		}
		t.Skipf("%s unavailable: %v", what, err)
	}
	return bin
}

// harness is a host catalog with its captured log, dumped on failure. The
// log, and every plugin stderr line relayed into it, is collected for the
// suite's secret-hygiene check, and so is every error its clients return.
type harness struct {
	*Catalog
	Logs *LogBuffer
	t    *testing.T
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	logs := &LogBuffer{}
	h := &harness{Catalog: NewCatalog(newTapLogger(NewLogger(logs), t.Name())), Logs: logs, t: t}
	t.Cleanup(func() {
		hygiene.addHostLog(t.Name(), logs.String())
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	return h
}

// register adds the inmem binary under name with extra plugin env entries.
func (h *harness) register(name string, env ...string) {
	h.t.Helper()
	h.registerBinary(requireBinary(h.t), name, nil, env...)
}

// registerBinary adds bin under name with its arguments and env entries.
func (h *harness) registerBinary(bin, name string, args []string, env ...string) {
	h.t.Helper()
	if args == nil {
		args = []string{}
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		h.t.Fatal(err)
	}
	h.Register(&pluginutil.PluginRunner{
		Name:    name,
		Command: bin,
		Args:    args,
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
// processGone reports whether pid has exited. A zombie counts as exited: once its parent
// (the host) is gone, reaping it is up to the system's init, which may take its time.
func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH) || isZombie(pid)
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
