package conformance

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	v4 "github.com/hashicorp/vault/sdk/database/dbplugin"
)

// TestE2EPostgresV4 drives the postgres-v4-plugin example through the SDK's
// v4 client, launched as Vault launches v4 plugins (AutoMTLS off, the TLS
// configuration handed over through a response-wrapping token), against a
// real PostgreSQL server: create, renew, set credentials, revoke, rotate root.
func TestE2EPostgresV4(t *testing.T) {
	bin := postgresV4PluginBin.require(t)
	srv := StartPostgres(t)
	root := srv.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	watch := &secretWatch{}
	watch.add(srv.Password, srv.URL(srv.Superuser, srv.Password))
	if _, err := root.Exec(ctx, "CREATE TABLE widgets (id int); INSERT INTO widgets VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	rotUser, p0 := "v4_root", newRootPassword(t)
	watch.add(p0, secret(t, kindURL, srv.URL(rotUser, p0)))
	if _, err := root.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s SUPERUSER LOGIN PASSWORD '%s'`, rotUser, p0)); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t)
	u, err := NewUnwrapServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	h.Unwrap = u
	h.registerBinary(bin, "postgres-v4", nil, "VAULT_CACERT="+u.CAFile)
	open := func() v4.Database {
		t.Helper()
		var db v4.Database
		if err := guarded(t, 30*time.Second, func() (err error) {
			db, err = h.OpenV4(ctx, "postgres-v4", false)
			return err
		}); err != nil {
			t.Fatalf("v4.NewPluginClient: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	db := open()
	if reqs := u.Requests(); len(reqs) != 1 || reqs[0].Status != 200 {
		t.Fatalf("want exactly one successful unwrap, got %+v", reqs)
	}
	if typ, err := db.Type(); err != nil || typ != "postgres" {
		t.Fatalf("Type = %q, %v", typ, err)
	}
	config := map[string]any{
		"connection_url": srv.TemplateURL(),
		"username":       rotUser,
		"password":       p0,
	}
	if _, err := db.Init(ctx, config, true); watch.err(err) != nil {
		t.Fatalf("Init: %v", err)
	}

	creation := []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON widgets TO "{{name}}";`}
	names := func() v4.UsernameConfig { return v4.UsernameConfig{DisplayName: "token-display", RoleName: "my-role"} }
	user, pw, err := db.CreateUser(ctx, v4.Statements{Creation: creation}, names(), time.Now().Add(time.Hour))
	if watch.err(err) != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	watch.add(secret(t, kindPassword, pw))
	if !regexp.MustCompile(`^v-token-di-my-role-[0-9A-Za-z]{20}-[0-9]+$`).MatchString(user) {
		t.Errorf("username %q does not have credsutil's shape", user)
	}
	if !regexp.MustCompile(`^A1a-[0-9A-Za-z]{16}$`).MatchString(pw) {
		t.Errorf("password does not have credsutil's shape (%d chars)", len(pw))
	}
	c := pgLoginOK(t, srv, user, pw)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT as the new user: %d, %v", n, err)
	}

	_, _, err = db.CreateUser(ctx, v4.Statements{Creation: []string{`CREATE ROLE "{{name}}" LOGIN; SELECT * FROM nope;`}}, names(), time.Now().Add(time.Hour))
	watch.err(err)
	mustContain(t, err, `ERROR: relation "nope" does not exist (SQLSTATE 42P01)`)

	exp := time.Now().Add(72 * time.Hour).Truncate(time.Second).UTC()
	if err := db.RenewUser(ctx, v4.Statements{}, user, exp); watch.err(err) != nil {
		t.Fatalf("RenewUser: %v", err)
	}
	var got time.Time
	if err := root.QueryRow(ctx, "SELECT rolvaliduntil FROM pg_roles WHERE rolname=$1", user).Scan(&got); err != nil || !got.Equal(exp) {
		t.Fatalf("rolvaliduntil = %v (%v), want %v", got, err, exp)
	}

	static, err := db.GenerateCredentials(ctx)
	if watch.err(err) != nil {
		t.Fatal(err)
	}
	watch.add(secret(t, kindPassword, static))
	if _, _, err := db.SetCredentials(ctx, v4.Statements{Rotation: []string{`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`}},
		v4.StaticUserConfig{Username: user, Password: static}); watch.err(err) != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	pgLoginRefused(t, srv, user, pw, "password set by SetCredentials")
	pgLoginOK(t, srv, user, static)

	for i := 0; i < 2; i++ {
		if err := db.RevokeUser(ctx, v4.Statements{}, user); watch.err(err) != nil {
			t.Fatalf("RevokeUser %d: %v", i, err)
		}
	}
	pgLoginRefused(t, srv, user, static, "revoked")
	if pgRoleExists(t, root, user) {
		t.Fatal("role still exists after RevokeUser")
	}

	newConfig, err := db.RotateRootCredentials(ctx, nil)
	if watch.err(err) != nil {
		t.Fatalf("RotateRootCredentials: %v", err)
	}
	p1, _ := newConfig["password"].(string)
	if p1 == "" || p1 == p0 {
		t.Fatal("RotateRootCredentials did not return a new password")
	}
	watch.add(secret(t, kindRootPassword, p1), secret(t, kindURL, srv.URL(rotUser, p1)))
	pgLoginRefused(t, srv, rotUser, p0, "rotated away")
	pgLoginOK(t, srv, rotUser, p1)
	// The instance keeps working, and a fresh one starts from the stored config.
	if _, pw, err := db.CreateUser(ctx, v4.Statements{Creation: creation}, names(), time.Now().Add(time.Hour)); watch.err(err) != nil {
		t.Fatalf("CreateUser after rotation: %v", err)
	} else {
		watch.add(secret(t, kindPassword, pw))
	}
	_ = db.Close()
	db2 := open()
	if _, err := db2.Init(ctx, newConfig, true); watch.err(err) != nil {
		t.Fatalf("Init with the rotated config: %v", err)
	}
	user2, pw2, err := db2.CreateUser(ctx, v4.Statements{Creation: creation}, names(), time.Now().Add(time.Hour))
	if watch.err(err) != nil {
		t.Fatal(err)
	}
	watch.add(secret(t, kindPassword, pw2))
	pgLoginOK(t, srv, user2, pw2)
	if err := db2.RevokeUser(ctx, v4.Statements{Revocation: []string{`REVOKE ALL ON widgets FROM "{{name}}"; DROP ROLE "{{name}}"`}}, user2); watch.err(err) != nil {
		t.Fatal(err)
	}
	if pgRoleExists(t, root, user2) {
		t.Fatal("role still exists after custom revocation")
	}
	watch.check(t, h.Logs.String())
}
