package conformance

// Throwaway database servers for the end-to-end tests of the real-database
// examples: PostgreSQL (initdb + postgres) and redis-server, each on a free
// loopback port with its files in a temporary directory. When the server
// binaries are missing the tests skip, except under CI=true, where they fail.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// lazily located example binaries (TestMain belongs to main_test.go).
type lazyBinary struct {
	once     sync.Once
	env, pkg string
	path     string
	err      error
}

func (l *lazyBinary) require(t *testing.T) string {
	t.Helper()
	l.once.Do(func() { l.path, l.err = locateBinary(l.env, l.pkg) })
	return require(t, l.pkg, l.path, l.err)
}

var (
	postgresPluginBin   = &lazyBinary{env: "DBPLUGIN_POSTGRES_BIN", pkg: "postgres-plugin"}
	postgresV4PluginBin = &lazyBinary{env: "DBPLUGIN_POSTGRES_V4_BIN", pkg: "postgres-v4-plugin"}
	redisPluginBin      = &lazyBinary{env: "DBPLUGIN_REDIS_BIN", pkg: "redis-plugin"}
)

// skipOrFail skips the test with reason, or fails it under CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// findServerBinary looks for name on PATH, then in the given glob patterns.
func findServerBinary(name string, globs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, g := range globs {
		matches, _ := filepath.Glob(g)
		for i := len(matches) - 1; i >= 0; i-- { // newest version last in lexical order
			if st, err := os.Stat(matches[i]); err == nil && !st.IsDir() {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %v", name, globs)
}

// serverLog collects a server's output, shown when the test fails.
type serverLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// PostgresServer is a running throwaway PostgreSQL cluster.
type PostgresServer struct {
	Port      int
	Superuser string
	Password  string
	Database  string
}

// URL is a connection URL with the given credentials.
func (p *PostgresServer) URL(user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, p.Port, p.Database)
}

// TemplateURL is the connection_url a plugin config uses.
func (p *PostgresServer) TemplateURL() string {
	return fmt.Sprintf("postgres://{{username}}:{{password}}@127.0.0.1:%d/%s?sslmode=disable", p.Port, p.Database)
}

// Connect logs in as user.
func (p *PostgresServer) Connect(ctx context.Context, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s sslmode=disable", p.Port, p.Database))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = user, password
	return pgx.ConnectConfig(ctx, cfg)
}

// Root is a superuser connection closed at the end of the test.
func (p *PostgresServer) Root(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := p.Connect(ctx, p.Superuser, p.Password)
	if err != nil {
		t.Fatalf("superuser login: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// asPostgres makes cmd run as the postgres system user when we are root
// (initdb and postgres refuse to run as root).
func asPostgres(cmd *exec.Cmd) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := postgresIDs()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return nil
}

func postgresIDs() (int, int, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, 0, fmt.Errorf("running as root needs the postgres system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// StartPostgres initialises and starts a cluster (scram-sha-256 everywhere,
// a superuser with a random password) and stops it when the test ends.
func StartPostgres(t *testing.T) *PostgresServer {
	t.Helper()
	pgGlobs := func(n string) []string { return []string{"/usr/lib/postgresql/*/bin/" + n} }
	initdb, err := findServerBinary("initdb", pgGlobs("initdb")...)
	if err != nil {
		skipOrFail(t, "PostgreSQL unavailable: %v", err)
	}
	postgres, err := findServerBinary("postgres", pgGlobs("postgres")...)
	if err != nil {
		skipOrFail(t, "PostgreSQL unavailable: %v", err)
	}
	if os.Geteuid() == 0 {
		if _, _, err := postgresIDs(); err != nil {
			skipOrFail(t, "PostgreSQL unavailable: %v", err)
		}
	}

	// Not t.TempDir(): its parent is private to root, and the server may run
	// as the postgres user.
	base, err := os.MkdirTemp("", "dbplugin-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if os.Geteuid() == 0 {
		uid, gid, _ := postgresIDs()
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	srv := &PostgresServer{
		Port:      freePort(t),
		Superuser: "rootadmin",
		Password:  secret(t, kindRootPassword, "Root-"+randomToken(t, 18)),
		Database:  "postgres",
	}
	secret(t, kindURL, srv.URL(srv.Superuser, srv.Password))
	pwfile := filepath.Join(base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(srv.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		uid, gid, _ := postgresIDs()
		_ = os.Chown(pwfile, uid, gid)
	}
	data := filepath.Join(base, "data")
	logs := &serverLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres output:\n%s", logs.String())
		}
	})
	cmd := exec.Command(initdb, "-D", data, "-U", srv.Superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := asPostgres(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, logs.String())
	}
	_ = os.Remove(pwfile)

	server := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(srv.Port), "-k", base,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "synchronous_commit=off", "-c", "max_connections=50")
	server.Stdout, server.Stderr = logs, logs
	if err := asPostgres(server); err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = server.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = server.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := srv.Connect(ctx, srv.Superuser, srv.Password)
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return srv
		}
		select {
		case <-exited:
			t.Fatalf("postgres exited early:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready after 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// randomToken is n base62 characters.
func randomToken(t *testing.T, n int) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	if _, err := cryptoRead(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// RedisServer is a running throwaway redis-server.
type RedisServer struct {
	Port     int
	Password string // of the default user
}

// Addr is host:port.
func (r *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// StartRedis starts redis-server without persistence, the default user
// protected by a random password, and stops it when the test ends.
func StartRedis(t *testing.T) *RedisServer {
	t.Helper()
	bin, err := findServerBinary("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/bin/valkey-server")
	if err != nil {
		skipOrFail(t, "redis-server unavailable: %v", err)
	}
	srv := &RedisServer{Port: freePort(t), Password: secret(t, kindRootPassword, "Redis-"+randomToken(t, 18))}
	dir := t.TempDir()
	logs := &serverLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-server output:\n%s", logs.String())
		}
	})
	// The password goes in a config file, not on the command line.
	conf := filepath.Join(dir, "redis.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\nrequirepass %s\n", srv.Port, dir, srv.Password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := DialRedis(srv.Addr(), "default", srv.Password)
		if err == nil {
			_ = c.Close()
			return srv
		}
		select {
		case <-exited:
			t.Fatalf("redis-server exited early:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not ready after 20s: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RedisConn is a minimal RESP2 client, enough for AUTH, ACL and key commands.
type RedisConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// RedisError is an error reply.
type RedisError string

func (e RedisError) Error() string { return string(e) }

// DialRedis connects and authenticates (AUTH user password).
func DialRedis(addr, user, password string) (*RedisConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &RedisConn{conn: c, r: bufio.NewReader(c)}
	if _, err := rc.Do("AUTH", user, password); err != nil {
		_ = c.Close()
		return nil, err
	}
	return rc, nil
}

// Close closes the connection.
func (c *RedisConn) Close() error { return c.conn.Close() }

// Do sends one command and reads its reply: string, int64, nil, []any, or a
// RedisError as the error.
func (c *RedisConn) Do(args ...string) (any, error) {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *RedisConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, RedisError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := c.read()
			var re RedisError
			if err != nil && !errors.As(err, &re) {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}
