package conformance

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
)

func redisConfig(srv *RedisServer, user, password string) map[string]any {
	return map[string]any{
		"host":     "127.0.0.1",
		"port":     strconv.Itoa(srv.Port), // weakly decoded, as the host may send it
		"username": user,
		"password": password,
	}
}

func redisLogin(t *testing.T, srv *RedisServer, user, password string) *RedisConn {
	t.Helper()
	c, err := DialRedis(srv.Addr(), user, password)
	if err != nil {
		t.Fatalf("AUTH %s on %s: %v", user, srv.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func redisLoginRefused(t *testing.T, srv *RedisServer, user, password, why string) {
	t.Helper()
	c, err := DialRedis(srv.Addr(), user, password)
	if err == nil {
		_ = c.Close()
		t.Fatalf("AUTH %s on %s succeeded, want refused (%s)", user, srv.Addr(), why)
	}
	if !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("AUTH %s: %v, want WRONGPASS", user, err)
	}
}

func redisUserExists(t *testing.T, root *RedisConn, name string) bool {
	t.Helper()
	v, err := root.Do("ACL", "GETUSER", name)
	if err != nil {
		t.Fatal(err)
	}
	return v != nil
}

// TestE2ERedis drives the redis-plugin example through the SDK's v5 client
// against two real redis-server processes, over two multiplexed connections
// of one plugin process.
func TestE2ERedis(t *testing.T) {
	bin := redisPluginBin.require(t)
	srvA, srvB := StartRedis(t), StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	watch := &secretWatch{}
	watch.add(srvA.Password, srvB.Password)
	rootA := redisLogin(t, srvA, "default", srvA.Password)
	rootB := redisLogin(t, srvB, "default", srvB.Password)
	for _, r := range []*RedisConn{rootA, rootB} {
		if _, err := r.Do("SET", "greeting", "hello"); err != nil {
			t.Fatal(err)
		}
	}

	h := newHarness(t)
	h.registerBinary(bin, "redis-plugin", nil)
	dbA := h.open(ctx, "redis-plugin")
	dbB := h.open(ctx, "redis-plugin")
	if dbA.Plugin.Process != dbB.Plugin.Process || h.Processes() != 1 {
		t.Fatalf("two connections should share one multiplexed process (processes: %d)", h.Processes())
	}
	if typ, err := dbA.Type(); err != nil || typ != "redis" {
		t.Fatalf("Type = %q, %v", typ, err)
	}
	for _, c := range []struct {
		db  *DB
		srv *RedisServer
	}{{dbA, srvA}, {dbB, srvB}} {
		if _, err := c.db.Initialize(ctx, dbplugin.InitializeRequest{
			Config: redisConfig(c.srv, "default", c.srv.Password), VerifyConnection: true,
		}); watch.err(err) != nil {
			t.Fatalf("Initialize: %v", err)
		}
	}

	meta := dbplugin.UsernameMetadata{DisplayName: "token-app", RoleName: "reader"}
	newUser := func(t *testing.T, db *DB, rules []string) (string, string) {
		t.Helper()
		pw := newPassword(t)
		watch.add(pw)
		resp, err := db.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig: meta, Statements: dbplugin.Statements{Commands: rules},
			CredentialType: dbplugin.CredentialTypePassword, Password: pw, Expiration: time.Now().Add(time.Hour),
		})
		if watch.err(err) != nil {
			t.Fatalf("NewUser: %v", err)
		}
		return resp.Username, pw
	}

	t.Run("default rules: read only", func(t *testing.T) {
		user, pw := newUser(t, dbA, nil)
		if !regexp.MustCompile(`^V_TOKEN-APP_READER_[0-9A-Z]{20}_[0-9]+$`).MatchString(user) {
			t.Errorf("username %q", user)
		}
		c := redisLogin(t, srvA, user, pw)
		if v, err := c.Do("GET", "greeting"); err != nil || v != "hello" {
			t.Fatalf("GET as the new user: %v, %v", v, err)
		}
		if _, err := c.Do("SET", "greeting", "changed"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("SET as a read-only user: %v, want NOPERM", err)
		}
	})

	t.Run("custom rules, password change, delete", func(t *testing.T) {
		user, pw := newUser(t, dbA, []string{`["~app:*", "+@all", "-@dangerous"]`})
		c := redisLogin(t, srvA, user, pw)
		if _, err := c.Do("SET", "app:x", "1"); err != nil {
			t.Fatalf("SET app:x: %v", err)
		}
		if _, err := c.Do("GET", "greeting"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("GET outside the key pattern: %v, want NOPERM", err)
		}
		if _, err := c.Do("FLUSHALL"); err == nil {
			t.Fatal("FLUSHALL allowed")
		}

		pw2 := newPassword(t)
		watch.add(pw2)
		if _, err := dbA.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: user, Password: &dbplugin.ChangePassword{NewPassword: pw2},
		}); watch.err(err) != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		redisLoginRefused(t, srvA, user, pw, "old password")
		redisLogin(t, srvA, user, pw2)
		// Expiration changes are accepted and ignored.
		if _, err := dbA.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: user, Expiration: &dbplugin.ChangeExpiration{NewExpiration: time.Now().Add(time.Hour)},
		}); watch.err(err) != nil {
			t.Fatalf("UpdateUser expiration: %v", err)
		}

		for i := 0; i < 2; i++ {
			if _, err := dbA.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: user}); watch.err(err) != nil {
				t.Fatalf("DeleteUser %d: %v", i, err)
			}
		}
		if redisUserExists(t, rootA, user) {
			t.Fatal("user still exists")
		}
		redisLoginRefused(t, srvA, user, pw2, "deleted")

		_, err := dbA.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: user, Password: &dbplugin.ChangePassword{NewPassword: pw2},
		})
		watch.err(err)
		mustContain(t, err, "user not found")
	})

	t.Run("raw rule statements", func(t *testing.T) {
		user, pw := newUser(t, dbA, []string{"~*", "+get"})
		c := redisLogin(t, srvA, user, pw)
		if _, err := c.Do("GET", "greeting"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do("EXISTS", "greeting"); err == nil {
			t.Fatal("EXISTS allowed with only +get")
		}
	})

	t.Run("multiplexed connections stay separate", func(t *testing.T) {
		userB, pwB := newUser(t, dbB, nil)
		if !redisUserExists(t, rootB, userB) || redisUserExists(t, rootA, userB) {
			t.Fatalf("user of connection B must exist on server B only")
		}
		userA, _ := newUser(t, dbA, nil)
		if redisUserExists(t, rootB, userA) {
			t.Fatalf("user of connection A exists on server B")
		}
		redisLogin(t, srvB, userB, pwB)
		redisLoginRefused(t, srvA, userB, pwB, "user of the other server")
		// A's client cannot touch B's user.
		if _, err := dbA.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: userB}); watch.err(err) != nil {
			t.Fatal(err)
		}
		if !redisUserExists(t, rootB, userB) {
			t.Fatal("deleting through connection A removed a user of server B")
		}
		if _, err := dbB.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: userB}); watch.err(err) != nil {
			t.Fatal(err)
		}
		if redisUserExists(t, rootB, userB) {
			t.Fatal("user still on server B")
		}
	})

	t.Run("root rotation", func(t *testing.T) {
		admin, p0, p1 := "plugin-admin", newRootPassword(t), newRootPassword(t)
		watch.add(p0, p1)
		if _, err := rootB.Do("ACL", "SETUSER", admin, "on", ">"+p0, "~*", "&*", "+@all"); err != nil {
			t.Fatal(err)
		}
		db := h.open(ctx, "redis-plugin")
		if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: redisConfig(srvB, admin, p0), VerifyConnection: true}); watch.err(err) != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: admin, Password: &dbplugin.ChangePassword{NewPassword: p1}}); watch.err(err) != nil {
			t.Fatal(err)
		}
		redisLoginRefused(t, srvB, admin, p0, "rotated")
		_ = db.Close()
		db2 := h.open(ctx, "redis-plugin")
		if _, err := db2.Initialize(ctx, dbplugin.InitializeRequest{Config: redisConfig(srvB, admin, p1), VerifyConnection: true}); watch.err(err) != nil {
			t.Fatalf("re-initialize with the rotated password: %v", err)
		}
		user, pw := newUser(t, db2, nil)
		redisLogin(t, srvB, user, pw)
	})

	t.Run("errors", func(t *testing.T) {
		db := h.open(ctx, "redis-plugin")
		_, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"host": "127.0.0.1", "port": 1, "username": "u"}})
		watch.err(err)
		mustContain(t, err, "password cannot be empty")
		_, err = db.Initialize(ctx, dbplugin.InitializeRequest{Config: redisConfig(srvA, "default", "wrong-"+srvA.Password), VerifyConnection: true})
		watch.err(err)
		mustContain(t, err, "error verifying connection")
	})

	watch.check(t, h.Logs.String())
}
