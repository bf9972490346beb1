package conformance

// Shared pieces of the reliability suite: the fault plugin binary, a secret
// watch over every error and every stderr line, memory readings, and a raw
// bytes codec for sending hostile messages.

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

var (
	faultOnce sync.Once
	faultBin  string
	faultErr  error
)

// requireFaultBinary builds (once) and returns the fault fixture plugin;
// DBPLUGIN_FAULT_BIN overrides.
func requireFaultBinary(t *testing.T) string {
	t.Helper()
	faultOnce.Do(func() { faultBin, faultErr = locateBinary("DBPLUGIN_FAULT_BIN", "fault-plugin") })
	return require(t, "fault plugin", faultBin, faultErr)
}

// Suite-wide counters reported by the hygiene test and the report.
var (
	hygieneLinesChecked  atomic.Int64
	hygieneErrorsChecked atomic.Int64
	hygieneLeaks         atomic.Int64
)

// secretWatchR remembers every secret a test handed to the plugin and every
// error the host got back; at cleanup it asserts that none of the secrets
// appears in an error or in any line of the host log (which carries the
// plugin's stderr).
type secretWatchR struct {
	mu      sync.Mutex
	secrets []string
	errs    []string
}

// add watches s and registers it with the suite's hygiene check too (a value
// registered earlier keeps the kind it was registered with).
func (w *secretWatchR) add(s ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range s {
		if v != "" {
			w.secrets = append(w.secrets, v)
			hygiene.registerWatched(v)
		}
	}
}

// err records err (if any) and returns it unchanged.
func (w *secretWatchR) err(err error) error {
	if err != nil {
		w.mu.Lock()
		w.errs = append(w.errs, err.Error())
		w.mu.Unlock()
	}
	return hygiene.err("secretWatchR", "error", err)
}

// leaksIn returns the lines of text that contain a secret.
func (w *secretWatchR) leaksIn(text string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		hygieneLinesChecked.Add(1)
		for _, s := range w.secrets {
			if strings.Contains(line, s) {
				// Never print the secret: its first 2 characters, and the line without it.
				out = append(out, fmt.Sprintf("secret %.2s… in %.300s", s, strings.ReplaceAll(line, s, "<SECRET>")))
			}
		}
	}
	return out
}

func (w *secretWatchR) check(t *testing.T, hostLog string) {
	t.Helper()
	leaks := w.leaksIn(hostLog)
	w.mu.Lock()
	errs := append([]string(nil), w.errs...)
	w.mu.Unlock()
	hygieneErrorsChecked.Add(int64(len(errs)))
	leaks = append(leaks, w.leaksIn(strings.Join(errs, "\n"))...)
	hygieneLeaks.Add(int64(len(leaks)))
	for _, l := range leaks {
		t.Errorf("secret leaked: %s", l)
	}
}

// faultHarness is a host catalog with the fault plugin registered as "fault",
// with a secret watch checked at cleanup.
type faultHarness struct {
	*harness
	watch  *secretWatchR
	root   string // the root password in the connection config
	url    string // the connection URL, with the root password in it
	pemKey string // a private key in the connection config
	token  string // an unwrap token in the plugin's environment
}

func randomString(t testing.TB, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func newFaultHarness(t *testing.T, env ...string) *faultHarness {
	t.Helper()
	bin := requireFaultBinary(t)
	h := &faultHarness{harness: newHarness(t), watch: &secretWatchR{}}
	h.root = secret(t, kindRootPassword, "Root-"+randomString(t, 24))
	h.url = secret(t, kindURL, "fault://root:"+h.root+"@db.internal:5432/app")
	h.pemKey = secret(t, kindPrivateKey, "-----BEGIN PRIVATE KEY-----MIIEv"+randomString(t, 40)+"-----END PRIVATE KEY-----")
	h.token = secret(t, kindUnwrapToken, "hvs.unwrap-"+randomString(t, 30))
	h.watch.add(h.root, h.pemKey, h.token, "root:"+h.root+"@", h.url)
	env = append(env, "VAULT_UNWRAP_TOKEN="+h.token)
	h.registerBinary(bin, "fault", nil, env...)
	t.Cleanup(func() { h.watch.check(t, h.Logs.String()) })
	return h
}

// config is a connection config holding the root password, a private key and
// a connection URL with credentials, plus extra keys.
func (h *faultHarness) config(extra ...any) map[string]any {
	c := map[string]any{
		"connection_url": h.url,
		"username":       "root",
		"password":       h.root,
		"private_key":    h.pemKey,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

// openInit opens a new logical client (a fresh multiplex id) and initializes it.
func (h *faultHarness) openInit(ctx context.Context, extra ...any) *DB {
	h.t.Helper()
	db := h.open(ctx, "fault")
	if _, err := h.watch.err2(db.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config(extra...)})); err != nil {
		h.t.Fatalf("Initialize: %v", err)
	}
	return db
}

func (w *secretWatchR) err2(resp dbplugin.InitializeResponse, err error) (dbplugin.InitializeResponse, error) {
	return resp, w.err(err)
}

// newUser creates a password user with the given statements; the password is
// watched.
func (h *faultHarness) newUser(ctx context.Context, db *DB, role string, commands ...string) (string, string, error) {
	pw := secret(h.t, kindPassword, "Pw-"+randomString(h.t, 20))
	h.watch.add(pw)
	resp, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "tok", RoleName: role},
		Statements:     dbplugin.Statements{Commands: commands},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       pw,
		Expiration:     time.Now().Add(time.Hour),
	})
	return resp.Username, pw, h.watch.err(err)
}

// rawConn is the process's shared gRPC connection (no multiplex id added).
func rawConn(t *testing.T, db *DB) *grpc.ClientConn {
	t.Helper()
	gc, ok := db.Plugin.ClientProtocol.(*plugin.GRPCClient)
	if !ok {
		t.Fatalf("client protocol is %T", db.Plugin.ClientProtocol)
	}
	return gc.Conn
}

func withMuxID(ctx context.Context, id string) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs("multiplex_id", id))
}

// rawCodec sends and receives message bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// rawInvoke sends body to method on conn with the multiplex id.
func rawInvoke(ctx context.Context, conn *grpc.ClientConn, id, method string, body []byte) ([]byte, error) {
	var out []byte
	if id != "" {
		ctx = withMuxID(ctx, id)
	}
	err := conn.Invoke(ctx, method, body, &out, grpc.ForceCodec(rawCodec{}),
		grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20))
	return out, hygiene.err("rawInvoke", method, err)
}

// procStatusKB reads a "<Key>:  N kB" field of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, key string) int64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatalf("read status of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse %s %q: %v", key, v, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

func rssKB(t *testing.T, pid int) int64 { return procStatusKB(t, pid, "VmRSS") }

// alive fails the test when pid is gone.
func mustBeAlive(t *testing.T, pid int) {
	t.Helper()
	if processGone(pid) {
		t.Fatalf("plugin process %d is gone", pid)
	}
}

var codeRe = regexp.MustCompile(`code = (\w+) desc`)

// codeOf is status.Code, also for the SDK's errors that keep only the text of
// the status ("rpc error: code = X desc = ...").
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if c := status.Code(err); c != codes.Unknown {
		return c
	}
	if m := codeRe.FindStringSubmatch(err.Error()); m != nil {
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if c.String() == m[1] {
				return c
			}
		}
	}
	return codes.Unknown
}

func appendMuxID(ctx context.Context, id string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "multiplex_id", id)
}

func forceRaw() grpc.CallOption { return grpc.ForceCodec(rawCodec{}) }

func netDial(sock string) (net.Conn, error) { return net.DialTimeout("unix", sock, 2*time.Second) }
