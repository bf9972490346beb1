// Package conformance drives a database plugin binary through the real
// Vault SDK and go-plugin host code, wired the way Vault's plugin catalog
// wires them, so that tests observe what a real Vault would observe.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/helper/wrapping"
	"github.com/hashicorp/vault/sdk/logical"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// VaultVersion is what the host reports to plugins in VAULT_VERSION.
const VaultVersion = "1.99.0"

// LogBuffer is a goroutine-safe sink for the host's hclog JSON output.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Entries decodes every JSON log line written so far; other lines are skipped.
func (b *LogBuffer) Entries() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Find returns the log entries whose @message equals msg.
func (b *LogBuffer) Find(msg string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entries() {
		if e["@message"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// NewLogger returns a trace-level JSON hclog logger writing into buf.
func NewLogger(buf *LogBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "host",
		Level:      hclog.Trace,
		Output:     buf,
		JSONFormat: true,
	})
}

// Process is one running plugin process, possibly shared by several logical
// clients when the plugin reports multiplexing support.
type Process struct {
	Client      *plugin.Client
	Multiplexed bool
	conns       map[string]*PluginClient
}

// PID of the plugin process (0 if it never started).
func (p *Process) PID() int {
	if rc := p.Client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Addr is the listener address announced in the plugin's handshake.
func (p *Process) Addr() (network, address string) {
	if rc := p.Client.ReattachConfig(); rc != nil && rc.Addr != nil {
		return rc.Addr.Network(), rc.Addr.String()
	}
	return "", ""
}

// PluginClient is one logical client (one multiplex id) of a Process. It
// satisfies pluginutil.PluginClient like Vault's catalog client does.
type PluginClient struct {
	plugin.ClientProtocol
	ID      string
	Process *Process
	conn    *idConn
	catalog *Catalog
	key     string
}

var _ pluginutil.PluginClient = (*PluginClient)(nil)

func (pc *PluginClient) Conn() grpc.ClientConnInterface { return pc.conn }

func (pc *PluginClient) Reload() error {
	return errors.New("reload is not supported by the conformance host")
}

// Close forgets this logical client and kills the process when it was the
// last one (or when the plugin is not multiplexed), as Vault does.
func (pc *PluginClient) Close() error { return pc.catalog.release(pc) }

// idConn adds the multiplex_id metadata to every call on the shared connection.
type idConn struct {
	*grpc.ClientConn
	id string
}

func (c *idConn) withID(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(pluginutil.MultiplexingCtxKey, c.id))
}

func (c *idConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConn.Invoke(c.withID(ctx), method, args, reply, opts...)
}

func (c *idConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConn.NewStream(c.withID(ctx), desc, method, opts...)
}

// Catalog is a minimal plugin catalog: registered runners by name, and
// running processes keyed by their launch parameters.
type Catalog struct {
	Logger hclog.Logger
	// Unwrap, when set, backs ResponseWrapData (the TLS-unwrap bootstrap of
	// plugins launched without AutoMTLS).
	Unwrap *UnwrapServer

	mu      sync.Mutex
	runners map[string]*pluginutil.PluginRunner
	procs   map[string]*Process
}

var _ pluginutil.LookRunnerUtil = (*Catalog)(nil)

func NewCatalog(logger hclog.Logger) *Catalog {
	return &Catalog{
		Logger:  logger,
		runners: map[string]*pluginutil.PluginRunner{},
		procs:   map[string]*Process{},
	}
}

// Register adds a database plugin runner under r.Name.
func (c *Catalog) Register(r *pluginutil.PluginRunner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Type = consts.PluginTypeDatabase
	c.runners[r.Name] = r
}

func (c *Catalog) LookupPlugin(ctx context.Context, name string, t consts.PluginType) (*pluginutil.PluginRunner, error) {
	return c.LookupPluginVersion(ctx, name, t, "")
}

func (c *Catalog) LookupPluginVersion(_ context.Context, name string, t consts.PluginType, _ string) (*pluginutil.PluginRunner, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.runners[name]
	if !ok || r.Type != t {
		return nil, fmt.Errorf("no plugin %q of type %s", name, t)
	}
	return r, nil
}

// ResponseWrapData stores data in the catalog's unwrap server under a
// single-use token, as Vault does when it launches a plugin without AutoMTLS.
func (c *Catalog) ResponseWrapData(_ context.Context, data map[string]any, ttl time.Duration, jwt bool) (*wrapping.ResponseWrapInfo, error) {
	// No c.mu here: newClient holds it while RunConfig calls back into us.
	u := c.Unwrap
	if u == nil {
		return nil, errors.New("response wrapping is not enabled on this conformance host")
	}
	return u.Wrap(data, ttl, jwt)
}

func (c *Catalog) MlockEnabled() bool                           { return false }
func (c *Catalog) VaultVersion(context.Context) (string, error) { return VaultVersion, nil }
func (c *Catalog) ClusterID(context.Context) (string, error)    { return "conformance-cluster", nil }
func (c *Catalog) DownloadExtractVerifyPlugin(context.Context, *pluginutil.PluginRunner) error {
	return errors.New("plugin download is not supported by the conformance host")
}

// Processes is the number of live plugin processes.
func (c *Catalog) Processes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.procs)
}

func processKey(r *pluginutil.PluginRunner) string {
	b, _ := json.Marshal([]any{r.Name, r.Type, r.Version, r.Command, r.Args, r.Env, r.Sha256})
	return string(b)
}

// NewPluginClient launches (or, for a multiplexed plugin, reuses) the process
// for config.Name and returns a logical client with a fresh multiplex id.
func (c *Catalog) NewPluginClient(ctx context.Context, config pluginutil.PluginClientConfig) (pluginutil.PluginClient, error) {
	pc, err := c.newClient(ctx, config)
	if err != nil {
		return nil, err
	}
	return pc, nil
}

func (c *Catalog) newClient(ctx context.Context, config pluginutil.PluginClientConfig) (*PluginClient, error) {
	runner, err := c.LookupPluginVersion(ctx, config.Name, config.PluginType, config.Version)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	id, err := base62.Random(10)
	if err != nil {
		return nil, err
	}
	key := processKey(runner)
	proc := c.procs[key]
	spawned := false
	if proc == nil || !proc.Multiplexed || len(proc.conns) == 0 {
		client, err := runner.RunConfig(ctx,
			pluginutil.PluginSets(config.PluginSets),
			pluginutil.HandshakeConfig(config.HandshakeConfig),
			pluginutil.Logger(config.Logger),
			pluginutil.MetadataMode(config.IsMetadataMode),
			pluginutil.MLock(false),
			pluginutil.AutoMTLS(config.AutoMTLS),
			pluginutil.Runner(config.Wrapper),
		)
		if err != nil {
			return nil, err
		}
		proc = &Process{Client: client, conns: map[string]*PluginClient{}}
		spawned = true
	}

	rpc, err := proc.Client.Client()
	if err != nil {
		if spawned {
			proc.Client.Kill()
		}
		return nil, err
	}
	grpcClient, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		if spawned {
			proc.Client.Kill()
		}
		return nil, fmt.Errorf("plugin did not negotiate gRPC (got %T)", rpc)
	}
	muxed, err := pluginutil.MultiplexingSupported(ctx, grpcClient.Conn, config.Name)
	if err != nil {
		if spawned {
			proc.Client.Kill()
		}
		return nil, err
	}
	proc.Multiplexed = muxed

	pc := &PluginClient{
		ClientProtocol: rpc,
		ID:             id,
		Process:        proc,
		conn:           &idConn{ClientConn: grpcClient.Conn, id: id},
		catalog:        c,
		key:            key,
	}
	proc.conns[id] = pc
	c.procs[key] = proc
	return pc, nil
}

func (c *Catalog) release(pc *PluginClient) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	proc := pc.Process
	if _, ok := proc.conns[pc.ID]; !ok {
		return fmt.Errorf("plugin connection %s not found", pc.ID)
	}
	delete(proc.conns, pc.ID)
	if proc.Multiplexed && len(proc.conns) > 0 && !proc.Client.Exited() {
		return nil
	}
	proc.Client.Kill()
	if c.procs[pc.key] == proc {
		delete(c.procs, pc.key)
	}
	return nil
}

// recorder remembers the logical client the SDK obtained through it.
type recorder struct {
	*Catalog
	mu   sync.Mutex
	last *PluginClient
}

func (r *recorder) NewPluginClient(ctx context.Context, config pluginutil.PluginClientConfig) (pluginutil.PluginClient, error) {
	pc, err := r.Catalog.newClient(ctx, config)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last = pc
	r.mu.Unlock()
	return pc, nil
}

// DB is a database connection obtained through the SDK's v5 plugin factory.
type DB struct {
	dbplugin.Database
	Plugin *PluginClient
}

// Version calls the version RPC through the logical client's connection,
// i.e. with multiplex_id, as Vault does when reading a connection config.
func (d *DB) Version(ctx context.Context) (string, error) {
	resp, err := logical.NewPluginVersionClient(d.Plugin.Conn()).Version(ctx, &logical.Empty{})
	if err != nil {
		return "", err
	}
	return resp.PluginVersion, nil
}

// OpenDatabase goes through dbplugin.PluginFactoryVersion exactly like
// Vault's database backend: launch (AutoMTLS), multiplexing probe, Type.
func (c *Catalog) OpenDatabase(ctx context.Context, name string) (*DB, error) {
	rec := &recorder{Catalog: c}
	db, err := dbplugin.PluginFactoryVersion(ctx, name, "", rec, c.Logger)
	if err != nil {
		return nil, err
	}
	if rec.last == nil {
		_ = db.Close()
		return nil, errors.New("factory did not create a plugin client")
	}
	return &DB{Database: db, Plugin: rec.last}, nil
}

// ProbeVersion mimics plugin registration: a metadata-mode AutoMTLS launch,
// the multiplexing probe, then the version RPC on the raw connection (no
// multiplex_id), then cleanup.
func (c *Catalog) ProbeVersion(ctx context.Context, name string) (string, error) {
	pc, err := c.newClient(ctx, pluginutil.PluginClientConfig{
		Name:            name,
		PluginType:      consts.PluginTypeDatabase,
		PluginSets:      dbplugin.PluginSets,
		HandshakeConfig: dbplugin.HandshakeConfig,
		Logger:          c.Logger.Named(name),
		IsMetadataMode:  true,
		AutoMTLS:        true,
		Wrapper:         c,
	})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	raw, err := pc.Dispense("database")
	if err != nil {
		return "", err
	}
	v, ok := raw.(logical.PluginVersioner)
	if !ok {
		return "", fmt.Errorf("dispensed %T does not report a version", raw)
	}
	if ver := v.PluginVersion().Version; ver != "" {
		return ver, nil
	}
	// The SDK swallows version errors; ask again on the same raw connection
	// so that a failure is reported with its cause.
	conn := pc.ClientProtocol.(*plugin.GRPCClient).Conn
	resp, err := logical.NewPluginVersionClient(conn).Version(ctx, &logical.Empty{})
	if err != nil {
		return "", fmt.Errorf("version RPC without multiplex_id: %w", err)
	}
	return resp.PluginVersion, nil
}
