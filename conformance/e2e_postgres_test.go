package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/template"
	"github.com/jackc/pgx/v5"
)

// The built-in PostgreSQL plugin's default username template.
const pgDefaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

// secretWatch remembers secrets and every error seen, to check at the end
// that no secret leaked into an error or the host log (plugin stderr).
type secretWatch struct {
	secrets []string
	errs    []string
}

// add watches s and registers it with the suite's hygiene check too (a value
// registered earlier keeps the kind it was registered with).
func (w *secretWatch) add(s ...string) {
	w.secrets = append(w.secrets, s...)
	for _, v := range s {
		hygiene.registerWatched(v)
	}
}

func (w *secretWatch) err(err error) error {
	if err != nil {
		w.errs = append(w.errs, err.Error())
	}
	return hygiene.err("secretWatch", "error", err)
}

func (w *secretWatch) check(t *testing.T, hostLog string) {
	t.Helper()
	if len(w.secrets) == 0 {
		t.Fatal("no secrets recorded")
	}
	for _, s := range w.secrets {
		if s == "" {
			continue
		}
		if strings.Contains(hostLog, s) {
			t.Errorf("a secret (%d chars) appears in the host log", len(s))
		}
		for _, e := range w.errs {
			if strings.Contains(e, s) {
				t.Errorf("a secret (%d chars) appears in error %q", len(s), strings.ReplaceAll(e, s, "<SECRET>"))
			}
		}
	}
}

func newPassword(t *testing.T) string { return secret(t, kindPassword, "Pw-"+randomToken(t, 20)) }

func pgLoginOK(t *testing.T, srv *PostgresServer, user, password string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := srv.Connect(ctx, user, password)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func pgLoginRefused(t *testing.T, srv *PostgresServer, user, password, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := srv.Connect(ctx, user, password)
	if err == nil {
		_ = c.Close(context.Background())
		t.Fatalf("login as %s succeeded, want refused (%s)", user, why)
	}
}

func pgRoleExists(t *testing.T, root *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := root.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname=$1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// shapeOf replaces runs of digits and the 20-character random part so two
// renderings of a template with random/unix_time can be compared.
func shapeOf(s string) string {
	s = regexp.MustCompile(`[0-9A-Za-z]{20}`).ReplaceAllString(s, "<R20>")
	return regexp.MustCompile(`[0-9]{9,}`).ReplaceAllString(s, "<UNIX>")
}

func sdkRender(t *testing.T, tpl string, meta dbplugin.UsernameMetadata) string {
	t.Helper()
	st, err := template.NewTemplate(template.Template(tpl))
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Generate(meta)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pgConfig(srv *PostgresServer, user, password string, extra ...any) map[string]any {
	cfg := map[string]any{
		"connection_url":       srv.TemplateURL(),
		"username":             user,
		"password":             password,
		"max_open_connections": "3",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i].(string)] = extra[i+1]
	}
	return cfg
}

// TestE2EPostgresV5 drives the postgres-plugin example through the SDK's v5
// client against a real PostgreSQL server.
func TestE2EPostgresV5(t *testing.T) {
	bin := postgresPluginBin.require(t)
	srv := StartPostgres(t)
	root := srv.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	watch := &secretWatch{}
	watch.add(srv.Password, srv.URL(srv.Superuser, srv.Password))

	for _, q := range []string{
		"CREATE TABLE widgets (id int)",
		"INSERT INTO widgets VALUES (1), (2)",
		"CREATE TABLE rollback_log (name text)",
	} {
		if _, err := root.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	h := newHarness(t)
	h.registerBinary(bin, "postgres-plugin", nil)
	db := h.open(ctx, "postgres-plugin")
	if typ, err := db.Type(); err != nil || typ != "pgx" {
		t.Fatalf("Type = %q, %v; want pgx", typ, err)
	}
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           pgConfig(srv, srv.Superuser, srv.Password),
		VerifyConnection: true,
	}); watch.err(err) != nil {
		t.Fatalf("Initialize: %v", err)
	}

	creation := []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
		GRANT SELECT ON widgets TO "{{name}}"; GRANT CREATE, USAGE ON SCHEMA public TO "{{name}}";`}
	meta := dbplugin.UsernameMetadata{DisplayName: "token-display", RoleName: "my-role"}
	pw1 := newPassword(t)
	watch.add(pw1)
	created, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: meta,
		Statements:     dbplugin.Statements{Commands: creation},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       pw1,
		Expiration:     time.Now().Add(time.Hour),
	})
	if watch.err(err) != nil {
		t.Fatalf("NewUser: %v", err)
	}
	user := created.Username

	t.Run("username matches the SDK template", func(t *testing.T) {
		want := sdkRender(t, pgDefaultUsernameTemplate, meta)
		if shapeOf(user) != shapeOf(want) {
			t.Errorf("username %q has shape %q; the SDK renders %q (shape %q)", user, shapeOf(user), want, shapeOf(want))
		}
		if !regexp.MustCompile(`^v-token-di-my-role-[0-9A-Za-z]{20}-[0-9]+$`).MatchString(user) {
			t.Errorf("username %q", user)
		}
	})

	t.Run("new user logs in with its privilege", func(t *testing.T) {
		c := pgLoginOK(t, srv, user, pw1)
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil || n != 2 {
			t.Fatalf("SELECT as the new user: %d, %v", n, err)
		}
		if _, err := c.Exec(ctx, "INSERT INTO widgets VALUES (3)"); err == nil {
			t.Fatal("INSERT succeeded without the privilege")
		}
		// Something the role owns, which the default revocation must hand over.
		if _, err := c.Exec(ctx, "CREATE TABLE owned_by_user (id int)"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("failing creation runs the rollback statements", func(t *testing.T) {
		pw := newPassword(t)
		watch.add(pw)
		_, err := db.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "failing"},
			Statements: dbplugin.Statements{Commands: []string{
				`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; SELECT * FROM no_such_table;`}},
			RollbackStatements: dbplugin.Statements{Commands: []string{`INSERT INTO rollback_log VALUES ('{{name}}');`}},
			CredentialType:     dbplugin.CredentialTypePassword,
			Password:           pw,
			Expiration:         time.Now().Add(time.Hour),
		})
		if watch.err(err) == nil {
			t.Fatal("NewUser with a failing statement succeeded")
		}
		mustContain(t, err, "failed to execute query", `ERROR: relation "no_such_table" does not exist (SQLSTATE 42P01)`)
		var names []string
		rows, err := root.Query(ctx, "SELECT name FROM rollback_log")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		rows.Close()
		if len(names) != 1 || !strings.HasPrefix(names[0], "v-token-failing-") {
			t.Fatalf("rollback_log = %q, want the failed user's name", names)
		}
		if pgRoleExists(t, root, names[0]) {
			t.Fatalf("role %q left behind", names[0])
		}
	})

	t.Run("empty creation statements", func(t *testing.T) {
		_, err := db.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: meta, CredentialType: dbplugin.CredentialTypePassword,
			Password: secret(t, kindPassword, "x-unused-1234"), Expiration: time.Now().Add(time.Hour),
		})
		watch.err(err)
		mustContain(t, err, "empty creation statements")
	})

	pw2 := newPassword(t)
	watch.add(pw2)
	t.Run("password change", func(t *testing.T) {
		if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: user,
			Password: &dbplugin.ChangePassword{NewPassword: pw2},
		}); watch.err(err) != nil {
			t.Fatalf("UpdateUser password: %v", err)
		}
		pgLoginRefused(t, srv, user, pw1, "old password")
		pgLoginOK(t, srv, user, pw2)
	})

	t.Run("expiration change", func(t *testing.T) {
		exp := time.Now().Add(48 * time.Hour).Truncate(time.Second).UTC()
		if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username:   user,
			Expiration: &dbplugin.ChangeExpiration{NewExpiration: exp},
		}); watch.err(err) != nil {
			t.Fatalf("UpdateUser expiration: %v", err)
		}
		var got time.Time
		if err := root.QueryRow(ctx, "SELECT rolvaliduntil FROM pg_roles WHERE rolname=$1", user).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(exp) {
			t.Fatalf("rolvaliduntil = %v, want %v", got, exp)
		}
	})

	t.Run("no changes requested", func(t *testing.T) {
		_, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: user})
		watch.err(err)
		if err == nil {
			t.Fatal("UpdateUser without changes succeeded")
		}
	})

	t.Run("delete user twice", func(t *testing.T) {
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: user}); watch.err(err) != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		pgLoginRefused(t, srv, user, pw2, "deleted")
		if pgRoleExists(t, root, user) {
			t.Fatal("role still exists")
		}
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: user}); watch.err(err) != nil {
			t.Fatalf("second DeleteUser: %v", err)
		}
	})

	t.Run("custom revocation statements", func(t *testing.T) {
		pw := newPassword(t)
		watch.add(pw)
		u, err := db.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: meta, Statements: dbplugin.Statements{Commands: creation[:1]},
			CredentialType: dbplugin.CredentialTypePassword, Password: pw, Expiration: time.Now().Add(time.Hour),
		})
		if watch.err(err) != nil {
			t.Fatal(err)
		}
		revoke := []string{`REVOKE ALL ON widgets FROM "{{name}}"; REVOKE ALL ON SCHEMA public FROM "{{username}}"; DROP ROLE IF EXISTS "{{name}}";`}
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: u.Username, Statements: dbplugin.Statements{Commands: revoke}}); watch.err(err) != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		if pgRoleExists(t, root, u.Username) {
			t.Fatal("role still exists")
		}
	})

	t.Run("scram-sha-256 and custom username_template", func(t *testing.T) {
		tpl := `{{ printf "u-%s-%s" (.DisplayName | truncate 5) (.RoleName | replace "-" "_") | lowercase }}`
		db2 := h.open(ctx, "postgres-plugin") // a second multiplexed connection
		if _, err := db2.Initialize(ctx, dbplugin.InitializeRequest{
			Config: pgConfig(srv, srv.Superuser, srv.Password,
				"password_authentication", "scram-sha-256", "username_template", tpl),
			VerifyConnection: true,
		}); watch.err(err) != nil {
			t.Fatalf("Initialize: %v", err)
		}
		pw := newPassword(t)
		watch.add(pw)
		m := dbplugin.UsernameMetadata{DisplayName: "Token-ABCDEF", RoleName: "Read-Only"}
		u, err := db2.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: m,
			Statements:     dbplugin.Statements{Commands: []string{`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`}},
			CredentialType: dbplugin.CredentialTypePassword, Password: pw, Expiration: time.Now().Add(time.Hour),
		})
		if watch.err(err) != nil {
			t.Fatalf("NewUser: %v", err)
		}
		if want := sdkRender(t, tpl, m); u.Username != want {
			t.Errorf("username %q, the SDK renders %q", u.Username, want)
		}
		var stored string
		if err := root.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname=$1", u.Username).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
			t.Errorf("stored password is not a SCRAM verifier: %.14q…", stored)
		}
		pgLoginOK(t, srv, u.Username, pw)
		pwNew := newPassword(t)
		watch.add(pwNew)
		if _, err := db2.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: u.Username, Password: &dbplugin.ChangePassword{NewPassword: pwNew},
		}); watch.err(err) != nil {
			t.Fatal(err)
		}
		pgLoginRefused(t, srv, u.Username, pw, "old password")
		pgLoginOK(t, srv, u.Username, pwNew)
		if _, err := db2.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: u.Username}); watch.err(err) != nil {
			t.Fatal(err)
		}
		_ = db2.Close()
	})

	t.Run("invalid settings", func(t *testing.T) {
		db3 := h.open(ctx, "postgres-plugin")
		_, err := db3.Initialize(ctx, dbplugin.InitializeRequest{
			Config: pgConfig(srv, srv.Superuser, srv.Password, "password_authentication", "md5"),
		})
		watch.err(err)
		mustContain(t, err, "'md5' is not a valid password authentication type")
		_, err = db3.Initialize(ctx, dbplugin.InitializeRequest{
			Config:           pgConfig(srv, srv.Superuser, "wrong-"+srv.Password),
			VerifyConnection: true,
		})
		watch.err(err)
		mustContain(t, err, "error verifying connection")
		_ = db3.Close()
	})

	t.Run("root rotation", func(t *testing.T) {
		rotUser, p0, p1 := "rotating_root", newRootPassword(t), newRootPassword(t)
		watch.add(p0, p1, secret(t, kindURL, srv.URL(rotUser, p0)), secret(t, kindURL, srv.URL(rotUser, p1)))
		if _, err := root.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s SUPERUSER LOGIN PASSWORD '%s'`, rotUser, p0)); err != nil {
			t.Fatal(err)
		}
		db4 := h.open(ctx, "postgres-plugin")
		if _, err := db4.Initialize(ctx, dbplugin.InitializeRequest{
			Config: pgConfig(srv, rotUser, p0), VerifyConnection: true,
		}); watch.err(err) != nil {
			t.Fatal(err)
		}
		// What rotate-root sends: UpdateUser of the root user with the new password.
		if _, err := db4.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: rotUser, Password: &dbplugin.ChangePassword{NewPassword: p1},
		}); watch.err(err) != nil {
			t.Fatalf("rotate root: %v", err)
		}
		pgLoginRefused(t, srv, rotUser, p0, "rotated away")
		// The host then closes the instance and initializes anew with the new password.
		if err := db4.Close(); err != nil {
			t.Fatal(err)
		}
		db5 := h.open(ctx, "postgres-plugin")
		if _, err := db5.Initialize(ctx, dbplugin.InitializeRequest{
			Config: pgConfig(srv, rotUser, p1), VerifyConnection: true,
		}); watch.err(err) != nil {
			t.Fatalf("re-initialize with the rotated password: %v", err)
		}
		pw := newPassword(t)
		watch.add(pw)
		u, err := db5.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: meta, Statements: dbplugin.Statements{Commands: creation},
			CredentialType: dbplugin.CredentialTypePassword, Password: pw, Expiration: time.Now().Add(time.Hour),
		})
		if watch.err(err) != nil {
			t.Fatalf("NewUser after rotation: %v", err)
		}
		pgLoginOK(t, srv, u.Username, pw)
		if _, err := db5.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: u.Username}); watch.err(err) != nil {
			t.Fatal(err)
		}
	})

	if err := db.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("close: %v", err)
	}
	watch.check(t, h.Logs.String())
}
