package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v4 "github.com/hashicorp/vault/sdk/database/dbplugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const v4Type = "inmem-v4"

var (
	v4PasswordShape = regexp.MustCompile(`^A1a-[0-9A-Za-z]{16}$`)
	v4UsernameShape = regexp.MustCompile(`^v-token-di-my-role--[0-9A-Za-z]{20}-([0-9]+)$`)
)

// newV4Harness is a harness whose catalog answers ResponseWrapData from a
// fresh unwrap server.
func newV4Harness(t *testing.T) (*harness, *UnwrapServer) {
	t.Helper()
	requireV4Binary(t)
	h := newHarness(t)
	u, err := NewUnwrapServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	h.Unwrap = u
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range u.Requests() {
				t.Logf("unwrap request %d: %s %s status %d headers %v body %q", i, r.Method, r.Path, r.Status, r.Header, r.Body)
			}
		}
	})
	return h, u
}

// registerV4 adds the v4 binary under name; VAULT_CACERT points at the
// unwrap server's CA, as a Vault with a private CA would set it.
func (h *harness) registerV4(name string, env ...string) {
	h.t.Helper()
	env = append([]string{"VAULT_CACERT=" + h.Unwrap.CAFile}, env...)
	h.registerBinary(requireV4Binary(h.t), name, nil, env...)
}

// openV4 launches through v4.NewPluginClient and registers Close.
func (h *harness) openV4(ctx context.Context, name string, metadataMode bool) v4.Database {
	h.t.Helper()
	var db v4.Database
	err := guarded(h.t, 30*time.Second, func() (err error) {
		db, err = h.OpenV4(ctx, name, metadataMode)
		return err
	})
	if err != nil {
		h.t.Fatalf("v4.NewPluginClient(%q, metadata=%v): %v", name, metadataMode, err)
	}
	h.t.Cleanup(func() { _ = db.Close() })
	return db
}

// pluginPIDs are the pids go-plugin reported as started, oldest first.
func pluginPIDs(logs *LogBuffer) []int {
	var out []int
	for _, e := range logs.Find("plugin started") {
		if pid, ok := e["pid"].(float64); ok {
			out = append(out, int(pid))
		}
	}
	return out
}

// assertOneUnwrap checks that the server saw exactly one unwrap request, a
// PUT carrying token in X-Vault-Token, answered 200, with the namespace
// header equal to ns (absent when ns is empty).
func assertOneUnwrap(t *testing.T, u *UnwrapServer, token, ns string) {
	t.Helper()
	reqs := u.Requests()
	if len(reqs) != 1 {
		t.Fatalf("unwrap server saw %d requests, want exactly 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "PUT" || r.Path != UnwrapPath {
		t.Errorf("unwrap request %s %s, want PUT %s", r.Method, r.Path, UnwrapPath)
	}
	if got := r.Header.Get("X-Vault-Token"); got != token {
		t.Errorf("X-Vault-Token = %q, want the wrapping token", got)
	}
	if r.Status != 200 {
		t.Errorf("unwrap answered %d, want 200 (token %q)", r.Status, r.Token)
	}
	got, present := r.Header["X-Vault-Namespace"]
	switch {
	case ns == "" && present && os.Getenv("VAULT_NAMESPACE") == "" && os.Getenv("BAO_NAMESPACE") == "":
		t.Errorf("X-Vault-Namespace sent (%q) although no namespace is set", got)
	case ns != "" && r.Header.Get("X-Vault-Namespace") != ns:
		t.Errorf("X-Vault-Namespace = %q, want %q", r.Header.Get("X-Vault-Namespace"), ns)
	}
	if r.Header.Get("X-Vault-Request") != "true" {
		t.Logf("note: no X-Vault-Request: true header (the Go api client sends it)")
	}
}

// TestV4UnwrapLifecycle drives the v4 example through the SDK's v4 client
// launched as Vault launches a v4 plugin: AutoMTLS off, the plugin's TLS
// configuration handed over in a response-wrapping token.
func TestV4UnwrapLifecycle(t *testing.T) {
	h, u := newV4Harness(t)
	h.registerV4("inmem-v4")
	ctx := testContext(t)

	db := h.openV4(ctx, "inmem-v4", false)

	// The wrapping token Vault would have minted.
	minted := u.Minted()
	if len(minted) != 1 {
		t.Fatalf("ResponseWrapData called %d times, want 1", len(minted))
	}
	token := minted[0]
	header, claims, sig, err := DecodeJWT(token)
	if err != nil {
		t.Fatalf("minted token is not a JWT: %v", err)
	}
	if !reflect.DeepEqual(header, map[string]any{"alg": "ES512", "typ": "JWT"}) || len(sig) != 132 {
		t.Fatalf("JWT header %v, signature %d bytes", header, len(sig))
	}
	if err := u.VerifyToken(token); err != nil {
		t.Fatalf("JWT signature: %v", err)
	}
	if claims["type"] != "wrapping" || claims["addr"] != u.Addr() || claims["accessor"] != "" ||
		claims["exp"].(float64)-claims["iat"].(float64) != 60 || claims["jti"] == "" {
		t.Fatalf("JWT claims %v", claims)
	}
	assertOneUnwrap(t, u, token, "")

	typ, err := db.Type()
	if err != nil || typ != v4Type {
		t.Fatalf("Type() = %q, %v; want %s", typ, err, v4Type)
	}

	// Init: the config comes back unchanged (the client merges the answer
	// into the map it sent, so compare against a fresh copy).
	snap := filepath.Join(t.TempDir(), "snapshot.json")
	secret(t, kindRootPassword, "root-secret")
	config := func() map[string]any {
		return map[string]any{
			"connection_url": "inmem://conformance",
			"snapshot_path":  snap,
			"username":       "root",
			"password":       "root-secret",
			"custom_key":     "kept",
		}
	}
	for _, verify := range []bool{true, false} {
		got, err := db.Init(ctx, config(), verify)
		if err != nil {
			t.Fatalf("Init(verify=%v): %v", verify, err)
		}
		if !reflect.DeepEqual(got, config()) {
			t.Fatalf("Init(verify=%v) = %v, want %v", verify, got, config())
		}
	}
	_, err = db.Init(ctx, map[string]any{"connection_url": "postgres://nowhere"}, true)
	mustContain(t, err, "unable to connect")
	if _, err := db.Init(ctx, config(), true); err != nil {
		t.Fatalf("re-Init: %v", err)
	}

	// GenerateCredentials, then CreateUser.
	generated, err := db.GenerateCredentials(ctx)
	secret(t, kindPassword, generated)
	if err != nil || !v4PasswordShape.MatchString(generated) {
		t.Fatalf("GenerateCredentials = %q, %v; want match %s", generated, err, v4PasswordShape)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	// (the v4 interface takes proto messages by value; build them per call)
	names := func() v4.UsernameConfig {
		return v4.UsernameConfig{DisplayName: "token-display", RoleName: "my-role-name"}
	}
	creation := []string{"CREATE USER '{{name}}' WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"}
	before := time.Now().Unix()
	user, password, err := db.CreateUser(ctx, v4.Statements{Creation: creation}, names(), exp)
	after := time.Now().Unix()
	hygiene.err(t.Name(), "CreateUser", err) // (observedV4 cannot wrap CreateUser)
	secret(t, kindPassword, password)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	m := v4UsernameShape.FindStringSubmatch(user)
	if m == nil || len(user) > 63 {
		t.Fatalf("username %q does not match %s (max 63 bytes)", user, v4UsernameShape)
	}
	if secs, _ := strconv.ParseInt(m[1], 10, 64); secs < before || secs > after {
		t.Errorf("username timestamp %s not within [%d, %d]", m[1], before, after)
	}
	if !v4PasswordShape.MatchString(password) || password == generated {
		t.Fatalf("CreateUser password %q: want a fresh password matching %s", password, v4PasswordShape)
	}
	s, raw := readV4Snapshot(t, snap)
	if strings.Contains(string(raw), password) || strings.Contains(string(raw), "root-secret") {
		t.Fatalf("snapshot contains a clear-text password: %s", raw)
	}
	u1 := s.user(t, user)
	wantStmts := []string{"CREATE USER '" + user + "' WITH PASSWORD '[password]' VALID UNTIL '" + exp.Format(expirationLayout) + "'"}
	if u1.CredentialType != "password" || u1.PasswordSHA256 != sha256Hex(password) || !reflect.DeepEqual(u1.Statements, wantStmts) {
		t.Fatalf("user in snapshot = %+v; want password sha %s (of the returned password), statements %q", u1, sha256Hex(password), wantStmts)
	}
	assertExpiration(t, u1, exp)
	if s.RootPasswordSHA256 != sha256Hex("root-secret") {
		t.Errorf("root_password_sha256 = %q, want sha256 of the configured root password", s.RootPasswordSHA256)
	}

	// A failing statement changes nothing.
	_, _, err = db.CreateUser(ctx, v4.Statements{Creation: []string{"CREATE USER '{{name}}'", "ERROR boom {{name}}"}}, names(), exp)
	hygiene.err(t.Name(), "CreateUser", err)
	mustContain(t, err, "statement failed: ERROR boom v-token-di-my-role--")
	if s2, _ := readV4Snapshot(t, snap); len(s2.Users) != 1 {
		t.Fatalf("failed CreateUser changed the users: %v", keys(s2.Users))
	}

	// RenewUser.
	exp2 := exp.Add(48 * time.Hour)
	if err := db.RenewUser(ctx, v4.Statements{Renewal: []string{"ALTER USER '{{name}}' VALID UNTIL '{{expiration}}'"}}, user, exp2); hygiene.err(t.Name(), "RenewUser", err) != nil {
		t.Fatalf("RenewUser: %v", err)
	}
	s, _ = readV4Snapshot(t, snap)
	assertExpiration(t, s.user(t, user), exp2)
	err = hygiene.err(t.Name(), "RenewUser", db.RenewUser(ctx, v4.Statements{}, "v-nobody", exp2))
	mustContain(t, err, "does not exist")

	// RevokeUser twice.
	for i := 1; i <= 2; i++ {
		if err := db.RevokeUser(ctx, v4.Statements{Revocation: []string{"DROP USER '{{name}}'"}}, user); hygiene.err(t.Name(), "RevokeUser", err) != nil {
			t.Fatalf("RevokeUser #%d: %v", i, err)
		}
		if s, _ := readV4Snapshot(t, snap); s.Users[user].CredentialType != "" {
			t.Fatalf("user %s still in snapshot after RevokeUser #%d", user, i)
		}
	}

	// SetCredentials: create, update, refuse a missing user without create.
	rotation := func() v4.Statements {
		return v4.Statements{Rotation: []string{"ALTER USER '{{name}}' WITH PASSWORD '{{password}}'"}}
	}
	for i, pw := range []string{secret(t, kindPassword, "Static-Pa55word-1"), secret(t, kindPassword, "Static-Pa55word-2")} {
		gotUser, gotPw, err := db.SetCredentials(ctx, rotation(), v4.StaticUserConfig{Username: "static-user", Password: pw, Create: i == 0})
		hygiene.err(t.Name(), "SetCredentials", err)
		if err != nil || gotUser != "static-user" || gotPw != pw {
			t.Fatalf("SetCredentials #%d = %q, %q, %v; want static-user, %q", i+1, gotUser, gotPw, err, pw)
		}
		if u := readV4Snapshot1(t, snap, "static-user"); u.PasswordSHA256 != sha256Hex(pw) {
			t.Fatalf("SetCredentials #%d: snapshot sha %s, want %s", i+1, u.PasswordSHA256, sha256Hex(pw))
		}
	}
	_, _, err = db.SetCredentials(ctx, rotation(), v4.StaticUserConfig{Username: "v-missing", Password: secret(t, kindPassword, "Static-Pa55word-3")})
	hygiene.err(t.Name(), "SetCredentials", err)
	mustContain(t, err, "does not exist")

	// RotateRootCredentials: the whole config comes back with a new password.
	newConfig, err := db.RotateRootCredentials(ctx, []string{"ALTER USER '{{username}}' WITH PASSWORD '{{password}}'"})
	if err != nil {
		t.Fatalf("RotateRootCredentials: %v", err)
	}
	newRoot, _ := newConfig["password"].(string)
	secret(t, kindRootPassword, newRoot)
	want := config()
	want["password"] = newRoot
	if newRoot == "" || newRoot == "root-secret" || !reflect.DeepEqual(newConfig, want) {
		t.Fatalf("RotateRootCredentials config = %v; want the Init config with a new password", newConfig)
	}
	if s, _ := readV4Snapshot(t, snap); s.RootPasswordSHA256 != sha256Hex(newRoot) {
		t.Fatalf("root_password_sha256 = %q, want sha256 of the returned password %s", s.RootPasswordSHA256, sha256Hex(newRoot))
	}

	// Without root credentials there is nothing to rotate.
	if _, err := db.Init(ctx, map[string]any{"connection_url": "inmem://no-root"}, true); err != nil {
		t.Fatalf("Init without credentials: %v", err)
	}
	if cfg, err := db.RotateRootCredentials(ctx, nil); err == nil {
		t.Fatalf("RotateRootCredentials without username/password succeeded: %v", cfg)
	}

	// Close: RPC, then the process goes away. Still one unwrap only.
	pids := pluginPIDs(h.Logs)
	if len(pids) != 1 {
		t.Fatalf("host started %d plugin processes, want 1", len(pids))
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGone(t, pids[0], 3*time.Second)
	if n := len(u.Requests()); n != 1 {
		t.Fatalf("unwrap server saw %d requests over the lifetime, want 1", n)
	}
}

// The api client adds X-Vault-Namespace from the inherited environment.
func TestV4UnwrapNamespace(t *testing.T) {
	for _, key := range []string{"VAULT_NAMESPACE", "BAO_NAMESPACE"} {
		t.Run(key, func(t *testing.T) {
			h, u := newV4Harness(t)
			h.registerV4("inmem-v4", key+"=team-a/")
			ctx := testContext(t)
			db := h.openV4(ctx, "inmem-v4", false)
			if typ, err := db.Type(); err != nil || typ != v4Type {
				t.Fatalf("Type() = %q, %v", typ, err)
			}
			assertOneUnwrap(t, u, u.Minted()[0], "team-a/")
		})
	}
}

// Registration-style v4 launches: metadata mode is plaintext without a
// token; a v4 plugin set launched with AutoMTLS on uses AutoMTLS.
func TestV4OtherTransports(t *testing.T) {
	t.Run("metadata mode", func(t *testing.T) {
		h, u := newV4Harness(t)
		h.registerV4("inmem-v4")
		ctx := testContext(t)
		db := h.openV4(ctx, "inmem-v4", true)
		if typ, err := db.Type(); err != nil || typ != v4Type {
			t.Fatalf("Type() = %q, %v", typ, err)
		}
		if n, r := len(u.Minted()), len(u.Requests()); n != 0 || r != 0 {
			t.Fatalf("metadata mode minted %d tokens, %d unwrap requests; want none", n, r)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("AutoMTLS", func(t *testing.T) {
		h, u := newV4Harness(t)
		h.registerV4("inmem-v4")
		ctx := testContext(t)
		var db *V4DB
		err := guarded(t, 30*time.Second, func() (err error) {
			db, err = h.OpenV4AutoMTLS(ctx, "inmem-v4")
			return err
		})
		if err != nil {
			t.Fatalf("v4 launch with AutoMTLS: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if typ, err := db.Type(); err != nil || typ != v4Type {
			t.Fatalf("Type() = %q, %v", typ, err)
		}
		if _, err := db.Init(ctx, map[string]any{"connection_url": "inmem://x"}, true); err != nil {
			t.Fatalf("Init: %v", err)
		}
		if pw, err := db.GenerateCredentials(ctx); err != nil || !v4PasswordShape.MatchString(secret(t, kindPassword, pw)) {
			t.Fatalf("GenerateCredentials = %q, %v", pw, err)
		}
		if n, r := len(u.Minted()), len(u.Requests()); n != 0 || r != 0 {
			t.Fatalf("AutoMTLS launch minted %d tokens, %d unwrap requests; want none", n, r)
		}
		pid := db.Plugin.Process.PID()
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		waitGone(t, pid, 3*time.Second)
	})
}

// The database backend's version probe: v5 first, then v4.
func TestV4Fallback(t *testing.T) {
	h, u := newV4Harness(t)
	h.registerV4("inmem-v4")
	ctx := testContext(t)

	var vdb *VersionedDB
	err := guarded(t, 40*time.Second, func() (err error) {
		vdb, err = h.OpenVersioned(ctx, "inmem-v4")
		return err
	})
	if err != nil {
		t.Fatalf("v5-then-v4 open: %v", err)
	}
	t.Cleanup(func() { _ = vdb.Close() })
	if vdb.V4 == nil {
		t.Fatal("the v5 factory accepted the v4 plugin")
	}
	refused := regexp.MustCompile(`^incompatible API version with plugin\. Plugin version: [34], Client versions: \[(5 6|6 5)\]$`)
	if !refused.MatchString(vdb.V5Err.Error()) {
		t.Fatalf("v5 attempt failed with %q, want match %s", vdb.V5Err, refused)
	}
	if n := h.Processes(); n != 0 {
		t.Errorf("catalog kept %d processes from the refused v5 attempt", n)
	}
	if pids := pluginPIDs(h.Logs); len(pids) != 2 {
		t.Errorf("host started %d plugin processes, want 2 (v5 attempt, v4)", len(pids))
	} else {
		waitGone(t, pids[0], 3*time.Second)
	}

	if typ, err := vdb.V4.Type(); err != nil || typ != v4Type {
		t.Fatalf("Type() = %q, %v", typ, err)
	}
	if _, err := vdb.V4.Init(ctx, map[string]any{"connection_url": "inmem://x"}, true); err != nil {
		t.Fatalf("Init: %v", err)
	}
	user, pw, err := vdb.V4.CreateUser(ctx, v4.Statements{}, v4.UsernameConfig{DisplayName: "token-display", RoleName: "my-role-name"}, time.Now().Add(time.Hour))
	hygiene.err(t.Name(), "CreateUser", err)
	secret(t, kindPassword, pw)
	if err != nil || !v4UsernameShape.MatchString(user) || !v4PasswordShape.MatchString(pw) {
		t.Fatalf("CreateUser = %q, %q, %v", user, pw, err)
	}
	assertOneUnwrap(t, u, u.Minted()[0], "")
	if err := vdb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A wrapping token already consumed (e.g. intercepted) makes the launch fail
// cleanly through the real host: the plugin explains, the host errors.
func TestV4UnwrapFailureThroughHost(t *testing.T) {
	h, u := newV4Harness(t)
	h.registerV4("inmem-v4")
	u.SetFault(FaultConsumed)
	err := guarded(t, 40*time.Second, func() error {
		db, err := h.OpenV4(testContext(t), "inmem-v4", false)
		if err == nil {
			_ = db.Close()
		}
		return err
	})
	if err == nil {
		t.Fatal("v4 launch with a consumed wrapping token succeeded")
	}
	t.Logf("host launch error: %v", err)
	token := u.Minted()[0]
	deadline := time.Now().Add(3 * time.Second)
	for {
		found := false
		for _, e := range h.Logs.Entries() {
			line, _ := json.Marshal(e)
			found = found || hasField(e, "@level", "error") && strings.Contains(string(line), invalidTokenMessage)
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host log has no relayed plugin error naming %q (launch error: %v)", invalidTokenMessage, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if leaks(h.Logs.String(), token) != "" {
		t.Fatalf("the wrapping token leaked into the host log (%s)", leaks(h.Logs.String(), token))
	}
}

// ---- the plugin process on its own ----------------------------------------

// pluginTLS is what the host keeps of the wrapped configuration: the same
// certificate serves as the plugin's server certificate and the host's
// client certificate, as in the SDK's runner.
type pluginTLS struct {
	cert tls.Certificate
	leaf *x509.Certificate
	data map[string]any // what goes into ResponseWrapData
}

func newPluginTLS(t *testing.T) pluginTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := randomUUID()
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		NotBefore:    now.Add(-30 * time.Second),
		NotAfter:     now.Add(262980 * time.Hour),
		IsCA:         true, // without BasicConstraintsValid, as the SDK makes it
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	rawKey, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	secretKey(t, rawKey)
	return pluginTLS{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf: leaf,
		data: map[string]any{"ServerCert": der, "ServerKey": rawKey},
	}
}

// clientConfig trusts only the plugin certificate and presents cert.
func (p pluginTLS) clientConfig(certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.leaf)
	return &tls.Config{Certificates: certs, RootCAs: pool,
		ServerName: p.leaf.Subject.CommonName, MinVersion: tls.VersionTLS12}
}

// v4LaunchEnv is the environment of a v4, non-metadata, non-AutoMTLS launch
// without the token and CA: nothing Vault-related is inherited.
func v4LaunchEnv(extra ...string) []string {
	env := slices.DeleteFunc(slices.Clone(os.Environ()), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "BAO_") ||
			strings.HasPrefix(k, "PLUGIN_") || k == "DBPLUGIN_NETWORK"
	})
	env = append(env, cookie, "PLUGIN_PROTOCOL_VERSIONS=3,4", "VAULT_PLUGIN_AUTOMTLS_ENABLED=false",
		"VAULT_PLUGIN_METADATA_MODE=false", "VAULT_VERSION="+VaultVersion)
	return append(env, extra...)
}

// lockedBuffer is a goroutine-safe byte sink for a child's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// servingPlugin is a v4 plugin process started by hand that printed its
// handshake line.
type servingPlugin struct {
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	network string
	addr    string
	waited  chan error
}

var v4Handshake = regexp.MustCompile(`^1\|4\|(unix|tcp)\|([^|]+)\|grpc\|$`)

func startServingV4(t *testing.T, env []string, args ...string) *servingPlugin {
	t.Helper()
	cmd := exec.Command(requireV4Binary(t), args...)
	cmd.Env = env
	stderr := &lockedBuffer{}
	cmd.Stderr = tapStderr(t, "inmem-v4-plugin", stderr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &servingPlugin{cmd: cmd, stderr: stderr, waited: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("plugin stderr:\n%s", stderr.String())
		}
	})
	line := firstLine(t, stdout, 15*time.Second)
	go func() { p.waited <- cmd.Wait() }()
	m := v4Handshake.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("handshake line %q does not match %s (protocol 4, empty certificate field)", line, v4Handshake)
	}
	p.network, p.addr = m[1], m[2]
	return p
}

func (p *servingPlugin) dial(t *testing.T, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///unused",
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, p.network, p.addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestV4UnwrapServe launches the plugin by hand with a wrapping token and
// talks to it with the raw v4 protocol: it serves exactly the unwrapped
// certificate, requires exactly that certificate from the client, and
// answers Init/Initialize.
func TestV4UnwrapServe(t *testing.T) {
	cases := []struct {
		name  string
		env   func(token, ca string) []string
		args  func(ca string) []string
		extra func(t *testing.T, p *servingPlugin, conn *grpc.ClientConn)
	}{
		{name: "VAULT_UNWRAP_TOKEN", env: func(tok, ca string) []string {
			return []string{"VAULT_UNWRAP_TOKEN=" + tok, "VAULT_CACERT=" + ca}
		}, extra: rawV4Checks},
		{name: "BAO_UNWRAP_TOKEN", env: func(tok, ca string) []string {
			return []string{"BAO_UNWRAP_TOKEN=" + tok, "VAULT_CACERT=" + ca}
		}},
		{name: "-ca-cert=file", env: func(tok, _ string) []string {
			return []string{"VAULT_UNWRAP_TOKEN=" + tok}
		}, args: func(ca string) []string { return []string{"-ca-cert=" + ca} }},
		{name: "-ca-cert file", env: func(tok, _ string) []string {
			return []string{"VAULT_UNWRAP_TOKEN=" + tok}
		}, args: func(ca string) []string { return []string{"-ca-cert", ca} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireV4Binary(t)
			u, err := NewUnwrapServer(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			pt := newPluginTLS(t)
			info, err := u.Wrap(pt.data, time.Minute, true)
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			if tc.args != nil {
				args = tc.args(u.CAFile)
			}
			p := startServingV4(t, v4LaunchEnv(tc.env(info.Token, u.CAFile)...), args...)
			assertOneUnwrap(t, u, info.Token, "")

			good := p.dial(t, credentials.NewTLS(pt.clientConfig(pt.cert)))
			resp, err := v4.NewDatabaseClient(observeConn(t.Name(), good)).Type(testContext(t), &v4.Empty{})
			if err != nil || resp.Type != v4Type {
				t.Fatalf("Type over the unwrapped mTLS = %v, %v", resp, err)
			}
			if err := healthCheck(good); err != nil {
				t.Fatalf("health check: %v", err)
			}
			other, _ := p521Cert(t)
			if err := healthCheck(p.dial(t, credentials.NewTLS(pt.clientConfig(other)))); err == nil {
				t.Error("RPC with another client certificate succeeded")
			}
			if err := healthCheck(p.dial(t, credentials.NewTLS(pt.clientConfig()))); err == nil {
				t.Error("RPC without a client certificate succeeded")
			}
			if err := healthCheck(p.dial(t, insecure.NewCredentials())); err == nil {
				t.Error("plaintext RPC succeeded")
			}
			if tc.extra != nil {
				tc.extra(t, p, good)
			}
			if leak := leaks(p.stderr.String(), info.Token); leak != "" {
				t.Errorf("stderr contains the wrapping token (%s)", leak)
			}
		})
	}
}

// rawV4Checks: Init returns the config byte-for-byte as JSON, the deprecated
// Initialize works, and a verified bad URL fails.
func rawV4Checks(t *testing.T, _ *servingPlugin, conn *grpc.ClientConn) {
	ctx := testContext(t)
	c := v4.NewDatabaseClient(observeConn(t.Name(), conn))
	// ("pw" is too short to register: see minSecretLen.)
	cfg := map[string]any{"connection_url": "inmem://raw", "username": "root", "password": secret(t, kindRootPassword, "pw"), "max_open_connections": 4.0}
	raw, _ := json.Marshal(cfg)
	resp, err := c.Init(ctx, &v4.InitRequest{Config: raw, VerifyConnection: true})
	if err != nil {
		t.Fatalf("Init RPC: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(resp.Config, &got); err != nil || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("Init RPC config = %s (%v), want %s", resp.Config, err, raw)
	}
	if _, err := c.Initialize(ctx, &v4.InitializeRequest{Config: raw, VerifyConnection: true}); err != nil {
		t.Fatalf("deprecated Initialize RPC: %v", err)
	}
	bad, _ := json.Marshal(map[string]any{"connection_url": "postgres://nowhere"})
	_, err = c.Initialize(ctx, &v4.InitializeRequest{Config: bad, VerifyConnection: true})
	mustContain(t, err, "unable to connect")
	_, err = c.Init(ctx, &v4.InitRequest{Config: bad, VerifyConnection: true})
	mustContain(t, err, "unable to connect")
}

// failedRun is the outcome of a plugin process that was expected to give up.
type failedRun struct {
	stdout, stderr string
	err            error
}

func runV4Failing(t *testing.T, env []string, args ...string) failedRun {
	t.Helper()
	cmd := exec.Command(requireV4Binary(t), args...)
	cmd.Env = env
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, tapStderr(t, "inmem-v4-plugin", &stderr)
	err := runWithTimeout(t, cmd, 45*time.Second)
	return failedRun{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// leaks names which secret part of a wrapping token occurs in s, if any:
// the token itself, its signature or its jti (the real token id).
func leaks(s, token string) string {
	if strings.Contains(s, token) {
		return "whole token"
	}
	parts := strings.Split(token, ".")
	if len(parts) == 3 && len(parts[2]) > 16 && strings.Contains(s, parts[2]) {
		return "JWT signature"
	}
	if _, claims, _, err := DecodeJWT(token); err == nil {
		if jti, _ := claims["jti"].(string); jti != "" && strings.Contains(s, jti) {
			return "jti"
		}
	}
	return ""
}

// assertCleanFailure: non-zero exit, nothing on stdout, stderr made only of
// hclog JSON lines of which exactly one is an error matching cause, and no
// trace of the token anywhere.
func assertCleanFailure(t *testing.T, r failedRun, token string, cause *regexp.Regexp) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("stdout: %q\nstderr:\n%s", r.stdout, r.stderr)
		}
	}()
	var exitErr *exec.ExitError
	if !errors.As(r.err, &exitErr) || exitErr.ExitCode() <= 0 {
		t.Errorf("exit = %v, want a non-zero exit status", r.err)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want empty", r.stdout)
	}
	var errorLines []string
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		if _, ok := e["@message"].(string); !ok {
			t.Errorf("stderr JSON line has no @message: %q", line)
		}
		if e["@level"] == "error" {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) != 1 {
		t.Errorf("stderr has %d error lines, want exactly 1", len(errorLines))
	} else if !cause.MatchString(errorLines[0]) {
		t.Errorf("error line %s does not name the cause (%s)", errorLines[0], cause)
	}
	for name, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if leak := leaks(s, token); leak != "" {
			t.Errorf("%s contains the wrapping token (%s)", name, leak)
		}
	}
}

// otherCA writes a fresh CA named cn and points VAULT_CACERT at it.
func otherCA(cn string) func(*UnwrapServer, *testing.T) []string {
	return func(_ *UnwrapServer, t *testing.T) []string {
		pemBytes, err := NewCAPEM(cn)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "other-ca.pem")
		if err := os.WriteFile(f, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"VAULT_CACERT=" + f}
	}
}

// TestV4UnwrapFailures: every way the bootstrap can go wrong ends the
// process with one explanatory error line.
func TestV4UnwrapFailures(t *testing.T) {
	invalid := regexp.MustCompile(regexp.QuoteMeta(invalidTokenMessage))
	tlsFailure := regexp.MustCompile(`(?i)certificate|x509|tls|verif|issuer`)
	cases := []struct {
		name  string
		fault Fault
		cause *regexp.Regexp
		env   func(u *UnwrapServer, t *testing.T) []string // CA settings; default VAULT_CACERT
		// status the unwrap server must have answered, if it was asked at all
		status int
	}{
		{name: "expired token", fault: FaultExpired, cause: regexp.MustCompile(regexp.QuoteMeta(invalidTokenMessage) + `|(?i)expired`), status: 400},
		{name: "consumed token", fault: FaultConsumed, cause: invalid, status: 400},
		{name: "malformed token", fault: FaultMalformed, cause: regexp.MustCompile(`(?i)jwt|malformed|decod|pars|segment|format`)},
		{name: "unreachable address", fault: FaultUnreachable, cause: regexp.MustCompile(`(?i)connect|refused|unreachable`)},
		{name: "no CA configured", cause: tlsFailure, env: func(*UnwrapServer, *testing.T) []string { return nil }},
		// Another CA under another name (the issuer is unknown), and another
		// CA under the server's CA name (the signature does not verify).
		{name: "wrong CA", cause: tlsFailure, env: otherCA("some other CA")},
		{name: "wrong CA with the same name", cause: tlsFailure, env: otherCA("conformance unwrap CA")},
		{name: "missing ServerCert", fault: FaultNoServerCert, cause: regexp.MustCompile(`ServerCert`), status: 200},
		{name: "missing ServerKey", fault: FaultNoServerKey, cause: regexp.MustCompile(`ServerKey`), status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireV4Binary(t)
			u, err := NewUnwrapServer(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			u.SetFault(tc.fault)
			info, err := u.Wrap(newPluginTLS(t).data, time.Minute, true)
			if err != nil {
				t.Fatal(err)
			}
			caEnv := []string{"VAULT_CACERT=" + u.CAFile}
			if tc.env != nil {
				caEnv = tc.env(u, t)
			}
			r := runV4Failing(t, v4LaunchEnv(append(caEnv, "VAULT_UNWRAP_TOKEN="+info.Token)...))
			assertCleanFailure(t, r, info.Token, tc.cause)
			for _, req := range u.Requests() {
				if tc.status != 0 && req.Status != tc.status {
					t.Errorf("unwrap server answered %d, want %d", req.Status, tc.status)
				}
			}
			if tc.status != 0 && len(u.Requests()) > 1 {
				t.Errorf("plugin sent %d unwrap requests for one token", len(u.Requests()))
			}
		})
	}

	// The second launch with a token the first launch already unwrapped.
	t.Run("token used by an earlier launch", func(t *testing.T) {
		requireV4Binary(t)
		u, err := NewUnwrapServer(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		info, err := u.Wrap(newPluginTLS(t).data, time.Minute, true)
		if err != nil {
			t.Fatal(err)
		}
		env := v4LaunchEnv("VAULT_CACERT="+u.CAFile, "VAULT_UNWRAP_TOKEN="+info.Token)
		first := startServingV4(t, env)
		_ = first.cmd.Process.Kill()
		<-first.waited
		r := runV4Failing(t, env)
		assertCleanFailure(t, r, info.Token, invalid)
		reqs := u.Requests()
		if len(reqs) != 2 || reqs[0].Status != 200 || reqs[1].Status != 400 {
			var got []string
			for _, q := range reqs {
				got = append(got, fmt.Sprint(q.Status))
			}
			t.Errorf("unwrap statuses %v, want [200 400]", got)
		}
	})
}

// v4Snapshot is the snapshot file of the v4 example.
type v4Snapshot struct {
	Users              map[string]snapshotUser `json:"users"`
	RootPasswordSHA256 string                  `json:"root_password_sha256"`
}

func (s v4Snapshot) user(t *testing.T, name string) snapshotUser {
	t.Helper()
	u, ok := s.Users[name]
	if !ok {
		t.Fatalf("snapshot has no user %q (users: %v)", name, keys(s.Users))
	}
	return u
}

func readV4Snapshot(t *testing.T, path string) (v4Snapshot, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	var s v4Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("decode snapshot %s: %v", raw, err)
	}
	if !bytes.Contains(raw, []byte(`"root_password_sha256"`)) {
		t.Fatalf("snapshot lacks root_password_sha256: %s", raw)
	}
	return s, raw
}

func readV4Snapshot1(t *testing.T, path, name string) snapshotUser {
	t.Helper()
	s, _ := readV4Snapshot(t, path)
	return s.user(t, name)
}
