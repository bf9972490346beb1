package conformance

import (
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var typedConfigPluginBin = &lazyBinary{env: "DBPLUGIN_TYPED_CONFIG_BIN", pkg: "typed-config-plugin"}

// assertScrubbed fails when err is nil or its text holds any of the secrets.
func assertScrubbed(t *testing.T, what string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: expected an error", what)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("%s: the error leaks %q: %v", what, s, err)
		}
	}
}

// TestErrorsNeverCarrySecrets: the in-memory plugin's "database" quotes failing statements
// with the real password in them and names the URL it could not reach, as real drivers
// do; what reaches the host must hold none of the secrets, with the status code intact.
func TestErrorsNeverCarrySecrets(t *testing.T) {
	h := newHarness(t)
	h.register("inmem")
	ctx := testContext(t)
	db := h.open(ctx, "inmem")

	const rootPassword = "r00t-Pa55-word"
	const literalURL = "postgres://admin:url-S3cret-9@db.internal:5432/app"
	secret(t, kindRootPassword, rootPassword)
	secret(t, kindURL, literalURL) // and, inside it, the root password url-S3cret-9
	_, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           map[string]any{"connection_url": literalURL},
		VerifyConnection: true,
	})
	assertScrubbed(t, "Initialize with credentials in the URL", err, "url-S3cret-9", literalURL)
	if !strings.Contains(err.Error(), "unable to connect to [connection_url]") {
		t.Fatalf("Initialize error lost its meaning: %v", err)
	}

	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config: map[string]any{
			"connection_url": "inmem://secrets",
			"username":       "admin",
			"password":       rootPassword,
		},
		VerifyConnection: true,
	}); err != nil {
		t.Fatalf("Initialize: %v", err)
	}

	const userPassword = "u5er-Pa55-word-1"
	secret(t, kindPassword, userPassword)
	_, err = db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "r"},
		Statements: dbplugin.Statements{Commands: []string{
			"ERROR cannot create role with password '{{password}}' (root " + rootPassword + ")",
		}},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       userPassword,
		Expiration:     time.Now().Add(time.Hour),
	})
	assertScrubbed(t, "NewUser", err, userPassword, rootPassword)
	if status.Code(err) != codes.Internal {
		t.Fatalf("NewUser: code %v, want Internal: %v", status.Code(err), err)
	}
	if !strings.Contains(err.Error(), "with password '[password]' (root [password])") {
		t.Fatalf("NewUser error lost its meaning: %v", err)
	}

	created, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "r"},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       userPassword,
		Expiration:     time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatalf("NewUser: %v", err)
	}
	const newPassword = "n3w-Pa55-word-2"
	secret(t, kindPassword, newPassword)
	_, err = db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
		Username:       created.Username,
		CredentialType: dbplugin.CredentialTypePassword,
		Password: &dbplugin.ChangePassword{
			NewPassword: newPassword,
			Statements:  dbplugin.Statements{Commands: []string{"ERROR ALTER ROLE PASSWORD '{{password}}'"}},
		},
	})
	assertScrubbed(t, "UpdateUser", err, newPassword, rootPassword)
	if status.Code(err) != codes.Internal {
		t.Fatalf("UpdateUser: code %v, want Internal: %v", status.Code(err), err)
	}

	for _, line := range strings.Split(h.Logs.String(), "\n") {
		for _, s := range []string{rootPassword, userPassword, newPassword, "url-S3cret-9"} {
			if strings.Contains(line, s) {
				t.Fatalf("the host log holds %q: %s", s, line)
			}
		}
	}
}

// TestTypedConfigRejectsWrongTypeWithoutEchoingIt: a #[database_plugin] with a typed config
// refuses a wrong-typed key at Initialize, naming the key and the expected type, never the
// value the operator wrote.
func TestTypedConfigRejectsWrongTypeWithoutEchoingIt(t *testing.T) {
	h := newHarness(t)
	h.registerBinary(typedConfigPluginBin.require(t), "typed", nil)
	ctx := testContext(t)
	db := h.open(ctx, "typed")

	const secretish = "hunter2-secret"
	secret(t, kindPassword, secretish) // a value that must never be echoed
	_, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           map[string]any{"connection_url": "typed://x", "max_users": secretish},
		VerifyConnection: true,
	})
	assertScrubbed(t, "Initialize with a wrong-typed key", err, secretish)
	want := "failed to initialize: `max_users`: expected a non-negative integer, got a string"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("Initialize error %q does not contain %q with code InvalidArgument", err, want)
	}

	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           map[string]any{"connection_url": "typed://x", "max_users": 2},
		VerifyConnection: true,
	}); err != nil {
		t.Fatalf("Initialize with a valid config: %v", err)
	}
}
