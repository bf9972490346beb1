package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
)

// processRunner starts the plugin as a local process through go-plugin's RunnerFunc hook,
// the hook Vault's container runner uses: with it, go-plugin creates the socket directory
// and passes it to the plugin in PLUGIN_UNIX_SOCKET_DIR.
type processRunner struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
}

var _ runner.Runner = (*processRunner)(nil)

// processRunnerFor runs bin with the environment go-plugin prepared in its command spec.
// The started runner is stored in *started.
func processRunnerFor(bin string, started **processRunner) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
		cmd := exec.Command(bin)
		cmd.Env = spec.Env
		r, err := newProcessRunner(cmd)
		*started = r
		return r, err
	}
}

func newProcessRunner(cmd *exec.Cmd) (*processRunner, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &processRunner{cmd: cmd, stdout: stdout, stderr: stderr}, nil
}

func (r *processRunner) Start(context.Context) error     { return r.cmd.Start() }
func (r *processRunner) Diagnose(context.Context) string { return "" }
func (r *processRunner) Stdout() io.ReadCloser           { return r.stdout }
func (r *processRunner) Stderr() io.ReadCloser           { return r.stderr }
func (r *processRunner) Name() string                    { return r.cmd.Path }
func (r *processRunner) Wait(context.Context) error      { return r.cmd.Wait() }
func (r *processRunner) ID() string                      { return fmt.Sprint(r.cmd.Process.Pid) }
func (r *processRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	return r.cmd.Process.Kill()
}
func (r *processRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *processRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// TestBrokerMultiplexContainerLaunch launches the plugin the way Vault's container runner
// does: go-plugin's gRPC broker multiplexing (PLUGIN_MULTIPLEX_GRPC, a yamux session over the
// one connection), a Unix socket directory and group chosen by the host, and no inherited
// environment apart from what go-plugin itself sets.
func TestBrokerMultiplexContainerLaunch(t *testing.T) {
	bin := requireBinary(t)
	logs := &LogBuffer{}
	t.Cleanup(func() {
		hygiene.addHostLog(t.Name(), logs.String())
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	sockDir, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	if err := os.Chmod(sockDir, 0o770); err != nil {
		t.Fatal(err)
	}
	var started *processRunner
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     dbplugin.HandshakeConfig,
		VersionedPlugins:    dbplugin.PluginSets,
		SkipHostEnv:         true,
		AutoMTLS:            true,
		GRPCBrokerMultiplex: true,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		UnixSocketConfig: &plugin.UnixSocketConfig{
			Group:   strconv.Itoa(os.Getegid()),
			TempDir: sockDir,
		},
		RunnerFunc:   processRunnerFor(bin, &started), // containers inherit no environment
		Logger:       newTapLogger(NewLogger(logs), t.Name()),
		StartTimeout: 30 * time.Second,
	})
	defer client.Kill()

	rpc, err := client.Client()
	if hygiene.err(t.Name(), "go-plugin Client", err) != nil {
		t.Fatalf("connecting with broker multiplexing: %v", err)
	}
	raw, err := rpc.Dispense("database")
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	db, ok := raw.(dbplugin.Database)
	if !ok {
		t.Fatalf("dispensed %T, not a v5 database", raw)
	}
	db = observeV5(t.Name(), db)

	rc := client.ReattachConfig()
	if rc == nil || rc.Addr == nil || filepath.Dir(filepath.Dir(rc.Addr.String())) != filepath.Clean(sockDir) {
		t.Fatalf("plugin socket %v is not inside the host's socket directory under %s", rc, sockDir)
	}
	pid := started.cmd.Process.Pid
	info, err := os.Stat(rc.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o660 {
		t.Fatalf("socket mode %o, want 0660 for the host's group", perm)
	}

	ctx := testContext(t)
	if typ, err := db.Type(); err != nil || typ != "inmem" {
		t.Fatalf("Type() = %q, %v", typ, err)
	}
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           map[string]any{"connection_url": "inmem://container"},
		VerifyConnection: true,
	}); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	created, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "role"},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       secret(t, kindPassword, "container-pw-1"),
		Expiration:     time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatalf("NewUser: %v", err)
	}
	if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
		Username:       created.Username,
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "container-pw-2")},
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
		Username:   created.Username,
		Expiration: &dbplugin.ChangeExpiration{NewExpiration: time.Now().Add(2 * time.Hour)},
	}); err != nil {
		t.Fatalf("UpdateUser expiration: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: created.Username}); err != nil {
			t.Fatalf("DeleteUser #%d: %v", i+1, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	start := time.Now()
	client.Kill()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Kill took %s: the plugin did not exit after Shutdown", d)
	}
	waitGone(t, pid, 2*time.Second)
	if _, err := os.Stat(rc.Addr.String()); !os.IsNotExist(err) {
		t.Fatalf("socket file %s left behind (%v)", rc.Addr.String(), err)
	}
	if len(logs.Find("plugin failed to exit gracefully")) > 0 {
		t.Fatal("the host had to SIGKILL the plugin")
	}
}
