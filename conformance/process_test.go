package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
)

// Three logical clients share one multiplexed process but not their state.
func TestMultiplexing(t *testing.T) {
	h := newHarness(t)
	h.register("inmem")
	ctx := testContext(t)
	dir := t.TempDir()

	dbs := make([]*DB, 3)
	snaps := make([]string, 3)
	users := make([]string, 3)
	for i := range dbs {
		dbs[i] = h.open(ctx, "inmem")
		snaps[i] = filepath.Join(dir, fmt.Sprintf("snap-%d.json", i))
		_, err := dbs[i].Initialize(ctx, dbplugin.InitializeRequest{
			Config: map[string]any{"connection_url": "inmem://mux", "snapshot_path": snaps[i]}, VerifyConnection: true})
		if err != nil {
			t.Fatalf("Initialize #%d: %v", i, err)
		}
	}
	proc := dbs[0].Plugin.Process
	if !proc.Multiplexed {
		t.Fatal("plugin did not report multiplexing support")
	}
	pid := proc.PID()
	ids := map[string]bool{}
	for i, db := range dbs {
		if db.Plugin.Process != proc || db.Plugin.Process.PID() != pid {
			t.Fatalf("client #%d runs in pid %d, want shared pid %d", i, db.Plugin.Process.PID(), pid)
		}
		ids[db.Plugin.ID] = true
	}
	if len(ids) != 3 || h.Processes() != 1 {
		t.Fatalf("want 3 distinct ids on 1 process, got ids %v, %d processes", keys(ids), h.Processes())
	}

	for i, db := range dbs {
		users[i] = mustNewPasswordUser(t, db, fmt.Sprintf("Pa55word-Mux-%d", i))
	}
	for i := range dbs {
		s, _ := readSnapshot(t, snaps[i])
		if len(s.Users) != 1 {
			t.Fatalf("snapshot %d has users %v, want only %s", i, keys(s.Users), users[i])
		}
		if u := s.user(t, users[i]); u.PasswordSHA256 != sha256Hex(fmt.Sprintf("Pa55word-Mux-%d", i)) {
			t.Fatalf("snapshot %d: wrong password hash", i)
		}
	}
	// Instances are separate: another id does not know the first id's user.
	_, err := dbs[1].UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: users[0],
		Password: &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "Pa55word-Other")}})
	mustContain(t, err, "does not exist")

	if err := dbs[0].Close(); err != nil {
		t.Fatalf("Close #0: %v", err)
	}
	if processGone(pid) {
		t.Fatal("process exited after closing the first of three clients")
	}
	for i := 1; i < 3; i++ {
		mustNewPasswordUser(t, dbs[i], "Pa55word-After-Close")
		if s, _ := readSnapshot(t, snaps[i]); len(s.Users) != 2 {
			t.Fatalf("snapshot %d has %d users after second NewUser, want 2", i, len(s.Users))
		}
	}
	if err := dbs[1].Close(); err != nil {
		t.Fatalf("Close #1: %v", err)
	}
	if processGone(pid) {
		t.Fatal("process exited while one client was still open")
	}
	if err := dbs[2].Close(); err != nil {
		t.Fatalf("Close #2: %v", err)
	}
	if !proc.Client.Exited() {
		t.Fatal("go-plugin client does not report the process as exited after the last Close")
	}
	waitGone(t, pid, time.Second)
	if h.Processes() != 0 {
		t.Fatalf("%d processes still registered", h.Processes())
	}
	for _, db := range dbs {
		found := false
		for _, e := range h.Logs.Find("database instance created") {
			found = found || hasField(e, "multiplex_id", db.Plugin.ID) && hasField(e, "@level", "debug")
		}
		if !found {
			t.Errorf("no 'database instance created' log for multiplex_id %s", db.Plugin.ID)
		}
	}
}

// Registration probe: metadata mode, version RPC without multiplex_id.
func TestMetadataModeVersion(t *testing.T) {
	h := newHarness(t)
	h.register("inmem")
	v, err := h.ProbeVersion(testContext(t), "inmem")
	if err != nil {
		t.Fatalf("ProbeVersion: %v", err)
	}
	if v != "v0.1.0" {
		t.Fatalf("version without multiplex_id = %q, want v0.1.0", v)
	}
	if h.Processes() != 0 {
		t.Fatal("probe left a process behind")
	}
	if e := h.Logs.Find("database instance created"); len(e) != 0 {
		t.Fatalf("metadata-mode probe created a database instance: %v", e)
	}
	if len(h.Logs.Find("plugin process exited")) == 0 {
		t.Fatal("host never observed the probe process exit")
	}
}

// The host's Kill goes through GRPCController/Shutdown; the plugin must exit
// 0 within go-plugin's 2 s grace period and remove its socket.
func TestControllerShutdown(t *testing.T) {
	h := newHarness(t)
	h.register("inmem")
	ctx := testContext(t)
	db := h.open(ctx, "inmem")
	proc := db.Plugin.Process
	network, sock := proc.Addr()
	if network != "unix" {
		t.Fatalf("default listener is %q %q, want unix", network, sock)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket %s not present while running: %v", sock, err)
	}
	pid := proc.PID()

	start := time.Now()
	proc.Client.Kill()
	took := time.Since(start)
	if took >= 2*time.Second {
		t.Errorf("Kill took %v, want < 2s", took)
	}
	if len(h.Logs.Find("plugin failed to exit gracefully")) != 0 {
		t.Error("host had to SIGKILL the plugin (no graceful exit within 2s)")
	}
	exited := h.Logs.Find("plugin process exited")
	if len(exited) != 1 {
		t.Fatalf("want one 'plugin process exited' log, got %v", exited)
	}
	if e := exited[0]; !hasField(e, "@level", "info") || e["error"] != nil {
		t.Errorf("plugin did not exit with status 0: %v", e)
	}
	waitGone(t, pid, time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file %s still exists after shutdown (stat err %v)", sock, err)
	}
	_ = db.Close() // releases the logical client; the SDK reports plugin shutdown
}

func mustNewPasswordUser(t *testing.T, db *DB, password string) string {
	t.Helper()
	resp, err := db.NewUser(testContext(t), dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token-display", RoleName: "my-role-name"},
		CredentialType: dbplugin.CredentialTypePassword, Password: secret(t, kindPassword, password),
		Expiration: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatalf("NewUser: %v", err)
	}
	return resp.Username
}
