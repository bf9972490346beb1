package conformance

// Suite-wide secret hygiene.
//
// Every test registers the secrets it creates (database root passwords,
// connection URLs with credentials, the passwords it sends in NewUser and
// UpdateUser, the private keys and wrapping tokens it mints, and the
// passwords plugins generate and return) with secret / secretKey. Every
// stderr line of every plugin process (relayed through go-plugin into a
// harness's logger, or read from a process the test started by hand), every
// line of every harness's host log, and every error a plugin call returned to
// the host is collected. After m.Run, TestMain checks all of it against all
// of the secrets and fails the run on any leak.
//
// Only plugin output counts: what a test prints itself (t.Logf of a value it
// compares, a server's log) is never collected.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	v4 "github.com/hashicorp/vault/sdk/database/dbplugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"google.golang.org/grpc"
)

// secretKind names what a registered secret is; a leak report names the kind,
// never the value.
type secretKind string

const (
	kindPassword     secretKind = "password"
	kindRootPassword secretKind = "root password"
	kindPrivateKey   secretKind = "private key"
	kindUnwrapToken  secretKind = "unwrap token"
	kindURL          secretKind = "connection URL with credentials"
)

// minSecretLen is the shortest value (and the shortest searched form of a
// value) that is registered. Shorter values, such as the "pw" or "x" some
// tests send to check argument handling, occur by chance in ordinary log text
// (inside words, hex ids, base64 and timestamps), so a match would say nothing;
// every real secret of the suite (random passwords, keys, tokens, URLs) is far
// longer. Such values are counted as skipped in the summary.
const minSecretLen = 6

// hygiene is the suite-wide collector.
var hygiene = &hygieneCollector{secrets: map[string]int{}, skipped: map[string]bool{}}

func init() {
	// unwrap.go (not a test file) reports the keys and tokens it mints here.
	noteSecret = func(kind string, value []byte) {
		switch secretKind(kind) {
		case kindPrivateKey:
			hygiene.registerKey("unwrap server", value)
		default:
			hygiene.register(secretKind(kind), "unwrap server", string(value))
		}
	}
}

type secretEntry struct {
	Kind     secretKind `json:"kind"`
	Test     string     `json:"test"`
	Display  string     `json:"display"`  // the first 2 characters, for reports
	Patterns []string   `json:"patterns"` // the forms searched for
}

type collectedText struct {
	source string
	text   string
}

type hygieneCollector struct {
	mu      sync.Mutex
	secrets map[string]int // primary value -> index in entries
	entries []secretEntry
	skipped map[string]bool // distinct values under minSecretLen

	stderr  []collectedText // plugin stderr lines (relayed or read directly)
	hostLog []collectedText // lines of the harnesses' host logs
	errs    []collectedText // errors returned to the host
	seen    map[error]bool  // errors recorded (one error seen twice counts once)
	procs   int             // plugin processes whose stderr was collected
	relayed int             // of which go-plugin relayed the stderr
	taps    []*stderrTap

	echo io.Writer // when set, every event is also written here (see replay)
}

// secret registers value as a secret of the given kind and returns it, so
// that it can wrap the expression that creates the value.
func secret(t testing.TB, kind secretKind, value string) string {
	t.Helper()
	hygiene.register(kind, t.Name(), value)
	return value
}

// secretKey registers a private key given in DER.
func secretKey(t testing.TB, der []byte) {
	t.Helper()
	hygiene.registerKey(t.Name(), der)
}

// newRootPassword is newPassword for the login a plugin's connection uses.
func newRootPassword(t *testing.T) string {
	return secret(t, kindRootPassword, "Root-"+randomToken(t, 18))
}

// guessKind is the kind of a value registered without one (through the
// per-test watches, which were written before the kinds existed).
func guessKind(v string) secretKind {
	switch {
	case strings.Contains(v, "PRIVATE KEY"):
		return kindPrivateKey
	case strings.Contains(v, "://") && strings.Contains(v, "@"):
		return kindURL
	case strings.HasPrefix(v, "hvs.") || strings.HasPrefix(v, "s."):
		return kindUnwrapToken
	}
	return kindPassword
}

// registerWatched registers a value handed to one of the per-test watches,
// unless it is registered already or merely contains a registered secret (a
// fragment such as "root:<password>@" is not a secret of its own).
func (h *hygieneCollector) registerWatched(value string) {
	h.mu.Lock()
	_, known := h.secrets[value]
	for _, e := range h.entries {
		if known {
			break
		}
		known = strings.Contains(value, e.Patterns[0])
	}
	h.mu.Unlock()
	if !known {
		h.register(guessKind(value), "a per-test watch", value)
	}
}

// register adds value; a value already registered keeps its first kind.
func (h *hygieneCollector) register(kind secretKind, test, value string) {
	if len(value) < minSecretLen {
		if value != "" {
			h.mu.Lock()
			h.skipped[value] = true
			h.mu.Unlock()
		}
		return
	}
	patterns := []string{value}
	switch kind {
	case kindPassword, kindRootPassword:
		// As it would appear inside a URL or a form body.
		patterns = append(patterns, url.QueryEscape(value), url.PathEscape(value),
			strings.TrimPrefix(url.UserPassword("u", value).String(), "u:"))
	case kindURL:
		// The password inside the URL is a secret of its own.
		if u, err := url.Parse(value); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				h.register(kindRootPassword, test, pw)
			}
		}
	case kindUnwrapToken:
		// A JWT: its claims and its signature each identify the token.
		if parts := strings.Split(value, "."); len(parts) == 3 {
			patterns = append(patterns, parts[1], parts[2])
			if _, claims, _, err := DecodeJWT(value); err == nil {
				if jti, _ := claims["jti"].(string); jti != "" {
					patterns = append(patterns, jti, strings.TrimPrefix(jti, "hvs."))
				}
			}
		}
		patterns = append(patterns, strings.TrimPrefix(value, "hvs."))
	case kindPrivateKey:
		// A key written as one PEM-like line: its base64 body too.
		if body := pemBody(value); body != "" {
			patterns = append(patterns, body)
		}
	}
	h.add(secretEntry{Kind: kind, Test: test, Display: display(value), Patterns: patterns})
}

// registerKey adds a private key given in DER, searched for as base64 (how
// JSON carries bytes), base64url, hex, and each full line of its PEM form.
func (h *hygieneCollector) registerKey(test string, der []byte) {
	if len(der) == 0 {
		return
	}
	b64 := base64.RawStdEncoding.EncodeToString(der)
	patterns := []string{b64, base64.RawURLEncoding.EncodeToString(der), hex.EncodeToString(der)}
	for _, typ := range []string{"PRIVATE KEY", "EC PRIVATE KEY"} {
		for _, line := range strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), "\n") {
			if len(line) == 64 {
				patterns = append(patterns, line)
			}
		}
	}
	h.add(secretEntry{Kind: kindPrivateKey, Test: test, Display: display(b64), Patterns: patterns})
}

func pemBody(v string) string {
	i := strings.Index(v, "PRIVATE KEY-----")
	if i < 0 {
		return ""
	}
	rest := v[i+len("PRIVATE KEY-----"):]
	if j := strings.Index(rest, "-----END"); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimSpace(rest)
}

func display(v string) string {
	if len(v) > 2 {
		v = v[:2]
	}
	return v + "…"
}

func (h *hygieneCollector) add(e secretEntry) {
	e.Patterns = searchForms(e.Patterns)
	if len(e.Patterns) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.secrets[e.Patterns[0]]; ok {
		return
	}
	h.secrets[e.Patterns[0]] = len(h.entries)
	h.entries = append(h.entries, e)
	h.emit("secret", e)
}

// searchForms adds the JSON-escaped form of each pattern (host log lines are
// hclog JSON) and drops duplicates and forms shorter than minSecretLen.
func searchForms(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range in {
		forms := []string{p}
		if j, err := json.Marshal(p); err == nil {
			forms = append(forms, strings.Trim(string(j), `"`))
		}
		for _, f := range forms {
			if len(f) >= minSecretLen && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// addStderr records one stderr line of a plugin process.
func (h *hygieneCollector) addStderr(source, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stderr = append(h.stderr, collectedText{source, line})
	h.emit("stderr", collectedText{source, line})
}

// addProcess counts a plugin process whose stderr is collected.
func (h *hygieneCollector) addProcess(source string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs++
	h.emit("process", collectedText{source: source})
}

// addHostLog records every line of a harness's host log.
func (h *hygieneCollector) addHostLog(source, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) != "" {
			h.hostLog = append(h.hostLog, collectedText{source, line})
		}
	}
}

// err records err (if any) as an error returned to the host, and returns it.
// An error value recorded twice (by a client wrapper and a per-test watch)
// counts once.
func (h *hygieneCollector) err(source, op string, err error) error {
	if err == nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if reflect.TypeOf(err).Kind() == reflect.Pointer {
		if h.seen[err] {
			return err
		}
		if h.seen == nil {
			h.seen = map[error]bool{}
		}
		h.seen[err] = true
	}
	h.errs = append(h.errs, collectedText{source + " " + op, err.Error()})
	h.emit("error", collectedText{source + " " + op, err.Error()})
	return err
}

// ---- processes started by hand ---------------------------------------------

// stderrTap receives the stderr of a plugin process a test started itself;
// its lines are collected at the end of the run.
type stderrTap struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	source string
}

func (s *stderrTap) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// tapStderr returns a writer for the stderr of one hand-started plugin
// process, and counts the process; w, if given, receives the output too.
func tapStderr(t testing.TB, what string, w io.Writer) io.Writer {
	tap := &stderrTap{source: t.Name() + " (" + what + ")"}
	hygiene.mu.Lock()
	hygiene.taps = append(hygiene.taps, tap)
	hygiene.mu.Unlock()
	hygiene.addProcess(tap.source)
	if w == nil {
		return tap
	}
	return io.MultiWriter(w, tap)
}

// ---- processes started through go-plugin -----------------------------------

// tapLogger wraps a host logger. go-plugin relays each plugin process's
// stderr through a logger it names from inside (*Client).logStderr; every
// line logged through such a logger is collected as a plugin stderr line.
type tapLogger struct {
	hclog.Logger
	source string
	relay  string // non-empty: this logger relays one process's stderr
}

func newTapLogger(l hclog.Logger, source string) hclog.Logger {
	return &tapLogger{Logger: l, source: source}
}

func (l *tapLogger) child(next hclog.Logger, name string) hclog.Logger {
	c := &tapLogger{Logger: next, source: l.source, relay: l.relay}
	if calledFromStderrRelay() {
		c.relay = l.source + " (" + name + ")"
		hygiene.addProcess(c.relay)
		hygiene.mu.Lock()
		hygiene.relayed++
		hygiene.mu.Unlock()
	}
	return c
}

func (l *tapLogger) Named(name string) hclog.Logger {
	return l.child(l.Logger.Named(name), name)
}

func (l *tapLogger) ResetNamed(name string) hclog.Logger {
	return l.child(l.Logger.ResetNamed(name), name)
}

func (l *tapLogger) With(args ...any) hclog.Logger {
	return &tapLogger{Logger: l.Logger.With(args...), source: l.source, relay: l.relay}
}

func (l *tapLogger) tap(msg string, args []any) {
	if l.relay == "" {
		return
	}
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i < len(args); i += 2 {
		if i+1 < len(args) {
			fmt.Fprintf(&b, " %v=%v", args[i], args[i+1])
		} else {
			fmt.Fprintf(&b, " %v", args[i])
		}
	}
	hygiene.addStderr(l.relay, b.String())
}

func (l *tapLogger) Log(level hclog.Level, msg string, args ...any) {
	l.tap(msg, args)
	l.Logger.Log(level, msg, args...)
}
func (l *tapLogger) Trace(msg string, args ...any) { l.tap(msg, args); l.Logger.Trace(msg, args...) }
func (l *tapLogger) Debug(msg string, args ...any) { l.tap(msg, args); l.Logger.Debug(msg, args...) }
func (l *tapLogger) Info(msg string, args ...any)  { l.tap(msg, args); l.Logger.Info(msg, args...) }
func (l *tapLogger) Warn(msg string, args ...any)  { l.tap(msg, args); l.Logger.Warn(msg, args...) }
func (l *tapLogger) Error(msg string, args ...any) { l.tap(msg, args); l.Logger.Error(msg, args...) }

// calledFromStderrRelay reports whether go-plugin's stderr reader is asking
// for the logger (it does so once per plugin process it starts).
func calledFromStderrRelay() bool {
	pcs := make([]uintptr, 8)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for i := 0; i < 4; i++ {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/hashicorp/go-plugin.") && strings.HasSuffix(f.Function, ".logStderr") {
			return true
		}
		if !more {
			break
		}
	}
	return false
}

// ---- errors returned to the host --------------------------------------------

// observedV5 records every error of a v5 database client.
type observedV5 struct {
	dbplugin.Database
	source string
}

func observeV5(source string, db dbplugin.Database) dbplugin.Database {
	if db == nil {
		return nil
	}
	return observedV5{Database: db, source: source}
}

func (d observedV5) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	r, err := d.Database.Initialize(ctx, req)
	return r, hygiene.err(d.source, "Initialize", err)
}

func (d observedV5) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	r, err := d.Database.NewUser(ctx, req)
	return r, hygiene.err(d.source, "NewUser", err)
}

func (d observedV5) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	r, err := d.Database.UpdateUser(ctx, req)
	return r, hygiene.err(d.source, "UpdateUser", err)
}

func (d observedV5) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	r, err := d.Database.DeleteUser(ctx, req)
	return r, hygiene.err(d.source, "DeleteUser", err)
}

func (d observedV5) Type() (string, error) {
	r, err := d.Database.Type()
	return r, hygiene.err(d.source, "Type", err)
}

func (d observedV5) Close() error { return hygiene.err(d.source, "Close", d.Database.Close()) }

// observedV4 records the errors of a v4 database client's methods that take
// no proto message by value. CreateUser, RenewUser, RevokeUser and
// SetCredentials do (go vet's copylocks check refuses a wrapper that passes
// them on), so their callers record those errors with hygiene.err.
type observedV4 struct {
	v4.Database
	source string
}

func observeV4(source string, db v4.Database) v4.Database {
	if db == nil {
		return nil
	}
	return observedV4{Database: db, source: source}
}

func (d observedV4) Type() (string, error) {
	r, err := d.Database.Type()
	return r, hygiene.err(d.source, "Type", err)
}

func (d observedV4) RotateRootCredentials(ctx context.Context, s []string) (map[string]any, error) {
	c, err := d.Database.RotateRootCredentials(ctx, s)
	return c, hygiene.err(d.source, "RotateRootCredentials", err)
}

func (d observedV4) GenerateCredentials(ctx context.Context) (string, error) {
	pw, err := d.Database.GenerateCredentials(ctx)
	return pw, hygiene.err(d.source, "GenerateCredentials", err)
}

func (d observedV4) Init(ctx context.Context, c map[string]any, verify bool) (map[string]any, error) {
	r, err := d.Database.Init(ctx, c, verify)
	return r, hygiene.err(d.source, "Init", err)
}

func (d observedV4) Close() error { return hygiene.err(d.source, "Close", d.Database.Close()) }

// observedConn records the errors of raw gRPC calls on a plugin connection.
type observedConn struct {
	grpc.ClientConnInterface
	source string
}

func observeConn(source string, cc grpc.ClientConnInterface) grpc.ClientConnInterface {
	return observedConn{ClientConnInterface: cc, source: source}
}

func (c observedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return hygiene.err(c.source, method, c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...))
}

// The harness's ways into the catalog, shadowing the Catalog's: each records
// its error and returns clients that record theirs.

func (h *harness) OpenDatabase(ctx context.Context, name string) (*DB, error) {
	db, err := h.Catalog.OpenDatabase(ctx, name)
	if err != nil {
		return nil, hygiene.err(h.t.Name(), "OpenDatabase", err)
	}
	db.Database = observeV5(h.t.Name(), db.Database)
	return db, nil
}

func (h *harness) ProbeVersion(ctx context.Context, name string) (string, error) {
	v, err := h.Catalog.ProbeVersion(ctx, name)
	return v, hygiene.err(h.t.Name(), "ProbeVersion", err)
}

func (h *harness) OpenV4(ctx context.Context, name string, metadataMode bool) (v4.Database, error) {
	db, err := h.Catalog.OpenV4(ctx, name, metadataMode)
	if err != nil {
		return nil, hygiene.err(h.t.Name(), "OpenV4", err)
	}
	return observeV4(h.t.Name(), db), nil
}

func (h *harness) OpenV4AutoMTLS(ctx context.Context, name string) (*V4DB, error) {
	db, err := h.Catalog.OpenV4AutoMTLS(ctx, name)
	if err != nil {
		return nil, hygiene.err(h.t.Name(), "OpenV4AutoMTLS", err)
	}
	db.Database = observeV4(h.t.Name(), db.Database)
	return db, nil
}

func (h *harness) OpenVersioned(ctx context.Context, name string) (*VersionedDB, error) {
	db, err := h.Catalog.OpenVersioned(ctx, name)
	if err != nil {
		return nil, hygiene.err(h.t.Name(), "OpenVersioned", err)
	}
	hygiene.err(h.t.Name(), "OpenVersioned (v5 attempt)", db.V5Err)
	db.V5 = observeV5(h.t.Name(), db.V5)
	db.V4 = observeV4(h.t.Name(), db.V4)
	return db, nil
}

// ---- a host in another process -----------------------------------------------

// hygieneEchoPrefix starts the lines by which a helper host process (see
// TestReliabilityHostDeath) hands its secrets and collected text to the
// parent test process, which cannot otherwise see them.
const hygieneEchoPrefix = "HYGIENE-EVENT "

type hygieneEvent struct {
	Type   string       `json:"type"`
	Secret *secretEntry `json:"secret,omitempty"`
	Source string       `json:"source,omitempty"`
	Text   string       `json:"text,omitempty"`
}

// setEcho makes the collector write every event, past and future, to w.
func (h *hygieneCollector) setEcho(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.echo = w
	for _, e := range h.entries {
		h.emit("secret", e)
	}
}

// emit writes one event to the echo writer; h.mu is held.
func (h *hygieneCollector) emit(typ string, v any) {
	if h.echo == nil {
		return
	}
	ev := hygieneEvent{Type: typ}
	switch v := v.(type) {
	case secretEntry:
		ev.Secret = &v
	case collectedText:
		ev.Source, ev.Text = v.source, v.text
	}
	raw, _ := json.Marshal(ev)
	fmt.Fprintf(h.echo, "%s%s\n", hygieneEchoPrefix, base64.StdEncoding.EncodeToString(raw))
}

// replay takes one echoed event (the text after hygieneEchoPrefix).
func (h *hygieneCollector) replay(line string) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line))
	if err != nil {
		return
	}
	var ev hygieneEvent
	if json.Unmarshal(raw, &ev) != nil {
		return
	}
	src := "host helper: " + ev.Source
	switch ev.Type {
	case "secret":
		if ev.Secret != nil {
			ev.Secret.Test = "host helper: " + ev.Secret.Test
			h.add(*ev.Secret)
		}
	case "stderr":
		h.addStderr(src, ev.Text)
	case "process":
		h.addProcess(src)
	case "error":
		h.mu.Lock()
		h.errs = append(h.errs, collectedText{src, ev.Text})
		h.mu.Unlock()
	}
}

// ---- the check ----------------------------------------------------------------

// matcher finds any of many patterns (all at least minSecretLen bytes) in a
// line in one pass: candidates are looked up by their first minSecretLen
// bytes, after a cheap filter on the first two.
type matcher struct {
	first2   [1 << 16]bool
	byPrefix map[string][]int
	patterns []string
	owner    []int // pattern -> entry
}

func newMatcher(entries []secretEntry) *matcher {
	m := &matcher{byPrefix: map[string][]int{}}
	for i, e := range entries {
		for _, p := range e.Patterns {
			id := len(m.patterns)
			m.patterns = append(m.patterns, p)
			m.owner = append(m.owner, i)
			m.first2[int(p[0])<<8|int(p[1])] = true
			m.byPrefix[p[:minSecretLen]] = append(m.byPrefix[p[:minSecretLen]], id)
		}
	}
	return m
}

// find returns the patterns occurring in line.
func (m *matcher) find(line string) []int {
	var hits []int
	for i := 0; i+minSecretLen <= len(line); i++ {
		if !m.first2[int(line[i])<<8|int(line[i+1])] {
			continue
		}
		for _, id := range m.byPrefix[line[i:i+minSecretLen]] {
			if strings.HasPrefix(line[i:], m.patterns[id]) {
				hits = append(hits, id)
			}
		}
	}
	return hits
}

// check searches everything collected for every secret, prints each leaking
// line (the secrets in it replaced by their kind) and a summary, and reports
// whether the run was clean.
func (h *hygieneCollector) check(w io.Writer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tap := range h.taps {
		tap.mu.Lock()
		sc := bufio.NewScanner(bytes.NewReader(tap.buf.Bytes()))
		sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
		for sc.Scan() {
			h.stderr = append(h.stderr, collectedText{tap.source, sc.Text()})
		}
		tap.mu.Unlock()
	}
	h.taps = nil

	m := newMatcher(h.entries)
	leaks := 0
	for _, set := range []struct {
		what  string
		texts []collectedText
	}{{"plugin stderr", h.stderr}, {"error returned to the host", h.errs}, {"host log", h.hostLog}} {
		for _, c := range set.texts {
			for _, line := range strings.Split(c.text, "\n") {
				hits := m.find(line)
				if len(hits) == 0 {
					continue
				}
				leaks++
				fmt.Fprintf(w, "secret hygiene: LEAK in %s of %s: %s\n", set.what, c.source, m.describe(h.entries, line, hits))
			}
		}
	}
	// go-plugin logs "plugin started" for every process it launches; if none
	// of those processes' stderr was seen, the relay is no longer recognised
	// (calledFromStderrRelay) and the check would be weaker than it claims.
	launched := 0
	for _, c := range h.hostLog {
		if strings.Contains(c.text, `"@message":"plugin started"`) {
			launched++
		}
	}
	relayLost := launched > 0 && h.relayed == 0
	if relayLost {
		fmt.Fprintf(w, "secret hygiene: go-plugin launched %d plugin processes but none of their stderr reached the collector: is (*Client).logStderr still where calledFromStderrRelay looks?\n", launched)
	}
	summary := fmt.Sprintf("secret hygiene: %d stderr lines and %d errors from %d plugin processes checked against %d secrets",
		len(h.stderr), len(h.errs), h.procs, len(h.entries))
	detail := fmt.Sprintf("(also %d host-log lines; %d values under %d bytes not registered)", len(h.hostLog), len(h.skipped), minSecretLen)
	switch {
	case leaks > 0:
		fmt.Fprintf(w, "%s: %d LEAKING LINES %s\n", summary, leaks, detail)
	case relayLost:
		fmt.Fprintf(w, "%s: plugin stderr NOT COLLECTED %s\n", summary, detail)
	default:
		fmt.Fprintf(w, "%s: no leaks %s\n", summary, detail)
	}
	return leaks == 0 && !relayLost
}

// describe returns line with every secret in it replaced by its kind and
// first two characters, followed by the kinds found.
func (m *matcher) describe(entries []secretEntry, line string, hits []int) string {
	// Longest patterns first, so that a URL is replaced before the password in it.
	sort.Slice(hits, func(i, j int) bool { return len(m.patterns[hits[i]]) > len(m.patterns[hits[j]]) })
	var found []string
	seen := map[int]bool{}
	for _, id := range hits {
		e := entries[m.owner[id]]
		line = strings.ReplaceAll(line, m.patterns[id], fmt.Sprintf("<%s %s>", e.Kind, e.Display))
		if !seen[m.owner[id]] {
			seen[m.owner[id]] = true
			found = append(found, fmt.Sprintf("%s %q registered by %s", e.Kind, e.Display, e.Test))
		}
	}
	if len(line) > 600 {
		line = line[:600] + "…"
	}
	return fmt.Sprintf("%s  [%s]", line, strings.Join(found, "; "))
}

// TestSecretHygieneCollector checks the collector itself, on a private
// instance: secrets are found in plain, URL-escaped and JSON-escaped form, in
// stderr lines, errors and host logs, and a report never repeats a secret.
func TestSecretHygieneCollector(t *testing.T) {
	c := &hygieneCollector{secrets: map[string]int{}, skipped: map[string]bool{}}
	pw := "Pw-a&b/c d+e"
	c.register(kindPassword, t.Name(), pw)
	c.register(kindURL, t.Name(), "postgres://admin:Url-S3cret-9@db:5432/app")
	c.register(kindPassword, t.Name(), "pw") // too short
	der := bytes.Repeat([]byte{0x5a, 0x13, 0xc7}, 40)
	c.registerKey(t.Name(), der)
	c.addStderr("stderr", "clean line")
	c.addStderr("stderr", "login as admin with "+url.QueryEscape(pw))
	c.err("errors", "op", fmt.Errorf("connect to postgres://admin:Url-S3cret-9@db:5432/app failed"))
	c.addHostLog("hostlog", `{"@message":"key","k":"`+base64.StdEncoding.EncodeToString(der)+`"}`+"\n"+
		`{"@message":"json","pw":"Pw-a\u0026b/c d+e"}`)
	var out bytes.Buffer
	if c.check(&out) {
		t.Fatalf("leaks not found:\n%s", out.String())
	}
	report := out.String()
	for _, want := range []string{
		"LEAK in plugin stderr of stderr: login as admin with <password Pw…>",
		"LEAK in error returned to the host of errors op: connect to <connection URL with credentials po…> failed",
		"LEAK in host log of hostlog: {\"@message\":\"key\",\"k\":\"<private key Wh…>",
		"LEAK in host log of hostlog: {\"@message\":\"json\",\"pw\":\"<password Pw…>\"}",
		"secret hygiene: 2 stderr lines and 1 errors from 0 plugin processes checked against 4 secrets: 4 LEAKING LINES (also 2 host-log lines; 1 values under 6 bytes not registered)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	for _, s := range []string{pw, url.QueryEscape(pw), "Url-S3cret-9", base64.RawStdEncoding.EncodeToString(der)[:16]} {
		if strings.Contains(report, s) {
			t.Errorf("the report repeats a secret:\n%s", report)
		}
	}
}
