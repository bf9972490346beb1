package conformance

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/database/dbplugin/v5/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const expirationLayout = "2006-01-02 15:04:05-0700"

var usernameShape = regexp.MustCompile(`^v-token-di-my-role--[0-9A-Za-z]{10}$`)

func TestLifecycle(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) { testLifecycle(t, network) })
	}
}

func testLifecycle(t *testing.T, network string) {
	h := newHarness(t)
	var env []string
	if network == "tcp" {
		env = []string{"DBPLUGIN_NETWORK=tcp"}
	}
	h.register("inmem", env...)
	ctx := testContext(t)

	db := h.open(ctx, "inmem") // the factory already called Type once
	gotNet, addr := db.Plugin.Process.Addr()
	if gotNet != network {
		t.Fatalf("plugin listens on %q %q, want network %q", gotNet, addr, network)
	}
	if network == "tcp" {
		if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
			t.Fatalf("tcp address %q is not on 127.0.0.1", addr)
		}
	}

	typ, err := db.Type()
	if err != nil || typ != "inmem" {
		t.Fatalf("Type() = %q, %v; want inmem", typ, err)
	}
	if v, err := db.Version(ctx); hygiene.err(t.Name(), "Version", err) != nil || v != "v0.1.0" {
		t.Fatalf("Version (with multiplex_id) = %q, %v; want v0.1.0", v, err)
	}

	// Initialize: verify on/off, bad URL.
	snap := filepath.Join(t.TempDir(), "snapshot.json")
	secret(t, kindRootPassword, "root-secret")
	cfg := map[string]any{
		"connection_url":       "inmem://conformance",
		"snapshot_path":        snap,
		"username":             "root",
		"password":             "root-secret",
		"custom_key":           "kept",
		"max_open_connections": 4,
	}
	want := map[string]any{
		"connection_url":       "inmem://conformance",
		"snapshot_path":        snap,
		"username":             "root",
		"password":             "root-secret",
		"custom_key":           "kept",
		"max_open_connections": int64(4),
		"supported_credential_types": []any{
			"password", "rsa_private_key", "client_certificate",
		},
	}
	for _, verify := range []bool{true, false} {
		resp, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: cfg, VerifyConnection: verify})
		if err != nil {
			t.Fatalf("Initialize(verify=%v): %v", verify, err)
		}
		if !reflect.DeepEqual(resp.Config, want) {
			t.Fatalf("Initialize(verify=%v) config =\n%#v\nwant\n%#v", verify, resp.Config, want)
		}
	}
	bad := map[string]any{"connection_url": "postgres://nowhere"}
	_, err = db.Initialize(ctx, dbplugin.InitializeRequest{Config: bad, VerifyConnection: true})
	mustContain(t, err, "unable to initialize: ", "unable to connect")
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: bad, VerifyConnection: false}); err != nil {
		t.Fatalf("Initialize(bad url, verify=false): %v", err)
	}
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: cfg, VerifyConnection: true}); err != nil {
		t.Fatalf("re-Initialize: %v", err)
	}

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	meta := dbplugin.UsernameMetadata{DisplayName: "token-display", RoleName: "my-role-name"}
	create := dbplugin.Statements{Commands: []string{
		"CREATE USER '{{name}}' WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
		"GRANT ALL TO \"{{username}}\"",
	}}

	// NewUser: password.
	const password = "Pa55word-Conformance-1"
	secret(t, kindPassword, password)
	pwUser := newUser(t, db, dbplugin.NewUserRequest{
		UsernameConfig: meta, Statements: create, CredentialType: dbplugin.CredentialTypePassword,
		Password: password, Expiration: exp,
	})
	s, raw := readSnapshot(t, snap)
	if strings.Contains(string(raw), password) {
		t.Fatalf("snapshot contains the clear-text password: %s", raw)
	}
	u := s.user(t, pwUser)
	wantStmts := []string{
		"CREATE USER '" + pwUser + "' WITH PASSWORD '[password]' VALID UNTIL '" + exp.Format(expirationLayout) + "'",
		"GRANT ALL TO \"" + pwUser + "\"",
	}
	if u.CredentialType != "password" || u.PasswordSHA256 != sha256Hex(password) ||
		!reflect.DeepEqual(u.Statements, wantStmts) || u.PublicKey != "" || u.Subject != "" {
		t.Fatalf("password user in snapshot = %+v; want sha %s statements %q", u, sha256Hex(password), wantStmts)
	}
	assertExpiration(t, u, exp)

	// NewUser: RSA public key.
	pub1 := rsaPublicPEM(t)
	rsaUser := newUser(t, db, dbplugin.NewUserRequest{
		UsernameConfig: meta, CredentialType: dbplugin.CredentialTypeRSAPrivateKey,
		PublicKey: pub1, Expiration: exp,
	})
	u = readSnapshotUser(t, snap, rsaUser)
	if u.CredentialType != "rsa_private_key" || u.PublicKey != string(pub1) || u.PasswordSHA256 != "" {
		t.Fatalf("rsa user in snapshot = %+v", u)
	}

	// NewUser: client certificate subject.
	const subject = "CN=inmem-user,O=Conformance"
	certUser := newUser(t, db, dbplugin.NewUserRequest{
		UsernameConfig: meta, CredentialType: dbplugin.CredentialTypeClientCertificate,
		Subject: subject, Expiration: exp,
	})
	u = readSnapshotUser(t, snap, certUser)
	if u.CredentialType != "client_certificate" || u.Subject != subject || u.PasswordSHA256 != "" {
		t.Fatalf("certificate user in snapshot = %+v", u)
	}
	if pwUser == rsaUser || rsaUser == certUser || pwUser == certUser {
		t.Fatalf("usernames not unique: %s %s %s", pwUser, rsaUser, certUser)
	}

	// UpdateUser: password, public key, expiration.
	const password2 = "Pa55word-Conformance-2"
	secret(t, kindPassword, password2)
	updateUser(t, db, dbplugin.UpdateUserRequest{Username: pwUser, CredentialType: dbplugin.CredentialTypePassword,
		Password: &dbplugin.ChangePassword{NewPassword: password2}})
	if u = readSnapshotUser(t, snap, pwUser); u.PasswordSHA256 != sha256Hex(password2) {
		t.Fatalf("password not updated: sha %s, want %s", u.PasswordSHA256, sha256Hex(password2))
	}
	pub2 := rsaPublicPEM(t)
	updateUser(t, db, dbplugin.UpdateUserRequest{Username: rsaUser, CredentialType: dbplugin.CredentialTypeRSAPrivateKey,
		PublicKey: &dbplugin.ChangePublicKey{NewPublicKey: pub2}})
	if u = readSnapshotUser(t, snap, rsaUser); u.PublicKey != string(pub2) {
		t.Fatalf("public key not updated: %q", u.PublicKey)
	}
	exp2 := exp.Add(48 * time.Hour)
	updateUser(t, db, dbplugin.UpdateUserRequest{Username: certUser,
		Expiration: &dbplugin.ChangeExpiration{NewExpiration: exp2}})
	assertExpiration(t, readSnapshotUser(t, snap, certUser), exp2)

	_, err = db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: "v-nobody",
		Password: &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "x-Password-1")}})
	mustContain(t, err, "unable to update user: ", "does not exist")
	if c := status.Code(err); c != codes.Internal {
		t.Fatalf("UpdateUser(unknown) code = %v, want Internal (%v)", c, err)
	}

	// DeleteUser twice.
	for i := 0; i < 2; i++ {
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: pwUser}); err != nil {
			t.Fatalf("DeleteUser #%d: %v", i+1, err)
		}
		if s, _ := readSnapshot(t, snap); s.Users[pwUser].CredentialType != "" {
			t.Fatalf("user %s still in snapshot after DeleteUser", pwUser)
		}
	}

	// Empty usernames: the SDK client refuses them before sending...
	// ("x" is too short to register: see minSecretLen.)
	_, err = db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Password: &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "x")}})
	mustContain(t, err, "missing username")
	_, err = db.DeleteUser(ctx, dbplugin.DeleteUserRequest{})
	mustContain(t, err, "missing username")
	// ...so the plugin-side check is exercised with the raw proto client.
	rawDB := proto.NewDatabaseClient(observeConn(t.Name(), db.Plugin.Conn()))
	_, err = rawDB.UpdateUser(ctx, &proto.UpdateUserRequest{
		Password: &proto.ChangePassword{NewPassword: "x-Password-1", Statements: &proto.Statements{}}})
	assertStatus(t, err, codes.InvalidArgument, "no username provided")
	_, err = rawDB.DeleteUser(ctx, &proto.DeleteUserRequest{Statements: &proto.Statements{}})
	assertStatus(t, err, codes.InvalidArgument, "no username provided")

	// A failing creation statement.
	before, _ := readSnapshot(t, snap)
	_, err = db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig:     meta,
		Statements:         dbplugin.Statements{Commands: []string{"CREATE USER '{{name}}'", "ERROR boom {{name}}"}},
		RollbackStatements: dbplugin.Statements{Commands: []string{"ROLLBACK-MARKER {{name}}"}},
		CredentialType:     dbplugin.CredentialTypePassword, Password: password, Expiration: exp,
	})
	if c := status.Code(err); c != codes.Internal {
		t.Fatalf("failing statement: code %v, want Internal (%v)", c, err)
	}
	failed := regexp.MustCompile(`^unable to create new user: rpc error: code = Internal desc = unable to create new user: statement failed: ERROR boom (v-token-di-my-role--[0-9A-Za-z]{10})$`)
	if !failed.MatchString(err.Error()) {
		t.Fatalf("failing statement error = %q, want match %s", err, failed)
	}
	after, raw := readSnapshot(t, snap)
	if len(after.Users) != len(before.Users) || strings.Contains(string(raw), "ROLLBACK-MARKER") {
		t.Fatalf("failed NewUser changed the snapshot: before %v after %s", keys(before.Users), raw)
	}

	// The runtime logged the instance creation for this id.
	created := false
	for _, e := range h.Logs.Find("database instance created") {
		created = created || hasField(e, "multiplex_id", db.Plugin.ID) && hasField(e, "@level", "debug")
	}
	if !created {
		t.Errorf("no DEBUG 'database instance created' log with multiplex_id=%s", db.Plugin.ID)
	}

	pid := db.Plugin.Process.PID()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGone(t, pid, 3*time.Second)
}

func TestDeleteMissingUserLogsWarning(t *testing.T) {
	h := newHarness(t)
	h.register("inmem")
	ctx := testContext(t)
	db := h.open(ctx, "inmem")
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"connection_url": "inmem://x"}}); err != nil {
		t.Fatal(err)
	}
	const missing = "v-ghost-user-0123456789"
	if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: missing}); err != nil {
		t.Fatalf("DeleteUser(missing) = %v, want success", err)
	}
	// stderr is relayed asynchronously: poll briefly.
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, e := range h.Logs.Find("user does not exist; nothing to delete") {
			if hasField(e, "@level", "warn") && hasField(e, "username", missing) {
				return
			}
			t.Logf("matching message with other fields: %v", e)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no WARN log line 'user does not exist; nothing to delete' with username=%s", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newUser(t *testing.T, db *DB, req dbplugin.NewUserRequest) string {
	t.Helper()
	resp, err := db.NewUser(testContext(t), req)
	if err != nil {
		t.Fatalf("NewUser(%v): %v", req.CredentialType, err)
	}
	if !usernameShape.MatchString(resp.Username) {
		t.Fatalf("username %q does not match %s", resp.Username, usernameShape)
	}
	return resp.Username
}

func updateUser(t *testing.T, db *DB, req dbplugin.UpdateUserRequest) {
	t.Helper()
	if _, err := db.UpdateUser(testContext(t), req); err != nil {
		t.Fatalf("UpdateUser(%s): %v", req.Username, err)
	}
}

func readSnapshotUser(t *testing.T, path, name string) snapshotUser {
	t.Helper()
	s, _ := readSnapshot(t, path)
	return s.user(t, name)
}

func assertExpiration(t *testing.T, u snapshotUser, want time.Time) {
	t.Helper()
	got, err := time.Parse(time.RFC3339, u.Expiration)
	if err != nil || !got.Equal(want) || !strings.HasSuffix(u.Expiration, "Z") {
		t.Fatalf("snapshot expiration %q, want %s (RFC3339 UTC)", u.Expiration, want.Format(time.RFC3339))
	}
}

func assertStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || st.Message() != msg {
		t.Fatalf("got %v; want status %v %q", err, code, msg)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func rsaPublicPEM(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	secretKey(t, x509.MarshalPKCS1PrivateKey(key))
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
