package conformance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A panic in an author's method is an Internal error for that call only; the
// process, the same id and the other ids keep working. A panic during
// Initialize leaves the id uninitialized, and a later Initialize works.
func TestReliabilityPanics(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	a := h.openInit(ctx)
	b := h.openInit(ctx)
	pid := a.Plugin.Process.PID()

	for _, action := range []string{"PANIC"} {
		_, _, err := h.newUser(ctx, a, "r", action)
		if codeOf(err) != codes.Internal {
			t.Fatalf("%s: code %v (%v), want Internal", action, codeOf(err), err)
		}
		mustContain(t, err, "unable to create new user", "panicked")
		if strings.Contains(err.Error(), "injected panic") {
			t.Errorf("%s: the panic payload reached the host: %v", action, err)
		}
		mustBeAlive(t, pid)
		for name, db := range map[string]*DB{"same id": a, "other id": b} {
			if _, _, err := h.newUser(ctx, db, "ok"); err != nil {
				t.Fatalf("%s after a panic: %v", name, err)
			}
		}
	}

	// A panic while a user is updated and deleted, too.
	user, _, err := h.newUser(ctx, a, "r")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: user, CredentialType: dbplugin.CredentialTypePassword,
		Password: &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "Pw-"+randomString(t, 16)), Statements: dbplugin.Statements{Commands: []string{"PANIC"}}}})
	if h.watch.err(err); codeOf(err) != codes.Internal {
		t.Fatalf("UpdateUser panic: %v", err)
	}
	_, err = a.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: user, Statements: dbplugin.Statements{Commands: []string{"PANIC"}}})
	if h.watch.err(err); codeOf(err) != codes.Internal {
		t.Fatalf("DeleteUser panic: %v", err)
	}

	// Initialize panics: the id stays uninitialized (not poisoned).
	c := h.open(ctx, "fault")
	for _, fault := range []string{"panic"} {
		_, err = c.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config("fault", fault)})
		if h.watch.err(err); codeOf(err) != codes.Internal {
			t.Fatalf("Initialize %s: %v", fault, err)
		}
		mustContain(t, err, "failed to initialize")
	}
	_, _, err = h.newUser(ctx, c, "r")
	if codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("NewUser after a panicking Initialize: %v, want FailedPrecondition (uninitialized)", err)
	}
	if _, err := h.watch.err2(c.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config()})); err != nil {
		t.Fatalf("second Initialize on the same id: %v", err)
	}
	if _, _, err := h.newUser(ctx, c, "r"); err != nil {
		t.Fatalf("NewUser after recovery: %v", err)
	}
	// A failing Initialize that names the root password gets it removed.
	d := h.open(ctx, "fault")
	_, err = d.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config("fault", "fail_secret")})
	if h.watch.err(err); err == nil {
		t.Fatal("fail_secret Initialize succeeded")
	}
	t.Logf("faults survived: NewUser panic, UpdateUser panic, DeleteUser panic, Initialize panic; last error %q", err)
	mustBeAlive(t, pid)
}

// A panic whose message contains the request's password: the call gets the
// generic Internal error, and the password must not reach the host's log via
// the runtime's panic hook either.
func TestReliabilityPanicPayloadSecret(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	a := h.openInit(ctx)
	_, _, err := h.newUser(ctx, a, "r", "PANIC_SECRET")
	if codeOf(err) != codes.Internal {
		t.Fatalf("PANIC_SECRET: %v", err)
	}
	c := h.open(ctx, "fault")
	_, err = c.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config("fault", "panic_secret")})
	if h.watch.err(err); codeOf(err) != codes.Internal {
		t.Fatalf("Initialize panic_secret: %v", err)
	}
	if _, _, err := h.newUser(ctx, a, "r"); err != nil {
		t.Fatalf("after the panics: %v", err)
	}
	// The secret watch (cleanup) checks the host log, i.e. the plugin's stderr.
}

// The host dies (SIGKILL): the plugin exits within 1 s, removes its socket
// and leaves no process behind, including the child it spawned.
func TestReliabilityHostDeath(t *testing.T) {
	bin := requireFaultBinary(t)
	dir := t.TempDir()
	childPidFile := filepath.Join(dir, "child.pid")
	cmd := exec.Command(os.Args[0], "-test.run=^TestReliabilityHostDeathHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "DBPLUGIN_FAULT_HOST_HELPER=1", "DBPLUGIN_FAULT_BIN="+bin,
		"DBPLUGIN_FAULT_CHILD_PID="+childPidFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var helperErr strings.Builder
	cmd.Stderr = &helperErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	scanned := make(chan struct{})
	defer func() {
		_ = cmd.Process.Kill()
		// What the helper collected for the secret-hygiene check comes
		// through its stdout: read it to the end before Wait closes it.
		select {
		case <-scanned:
		case <-time.After(5 * time.Second):
		}
		_ = cmd.Wait()
	}()
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), hygieneEchoPrefix); ok {
				hygiene.replay(l)
			} else if l, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- l
			}
		}
		close(ready)
	}()
	var line string
	select {
	case l, ok := <-ready:
		if !ok {
			t.Fatalf("host helper exited without READY; stderr:\n%s", helperErr.String())
		}
		line = l
	case <-time.After(60 * time.Second):
		t.Fatal("host helper not ready within 60s")
	}
	var pluginPid int
	var sock string
	if _, err := fmt.Sscanf(line, "%d %s", &pluginPid, &sock); err != nil {
		t.Fatalf("READY line %q: %v", line, err)
	}
	raw, err := os.ReadFile(childPidFile)
	if err != nil {
		t.Fatalf("child pid file: %v", err)
	}
	childPid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	t.Cleanup(func() { _ = syscall.Kill(childPid, syscall.SIGKILL); _ = syscall.Kill(pluginPid, syscall.SIGKILL) })
	if processGone(pluginPid) || processGone(childPid) {
		t.Fatal("plugin or its child not running before the host was killed")
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-scanned:
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Wait()
	for !processGone(pluginPid) && time.Since(start) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("host SIGKILLed: plugin %d gone after %v", pluginPid, took.Round(time.Millisecond))
	if !processGone(pluginPid) {
		t.Fatalf("plugin %d still alive %v after the host was killed", pluginPid, took)
	}
	if took > time.Second {
		t.Errorf("plugin took %v to exit after the host died, want ≤ 1s", took)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind (stat err %v)", sock, err)
	}
	time.Sleep(300 * time.Millisecond)
	if !processGone(childPid) && !isZombie(childPid) {
		t.Errorf("the plugin's child process %d (sleep) outlived the plugin: orphaned (ppid now %d)", childPid, ppidOf(childPid))
	}
}

func isZombie(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func ppidOf(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// The host of TestReliabilityHostDeath: launches the fault plugin through the
// Catalog, makes it spawn a child, reports, and waits to be killed.
func TestReliabilityHostDeathHelper(t *testing.T) {
	if os.Getenv("DBPLUGIN_FAULT_HOST_HELPER") != "1" {
		t.Skip("only run as the host process of TestReliabilityHostDeath")
	}
	// This process is SIGKILLed, so its own TestMain never checks anything:
	// hand every secret and every collected line to the parent instead.
	hygiene.setEcho(os.Stdout)
	h := newFaultHarness(t)
	ctx := context.Background()
	db := h.open(ctx, "fault")
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: h.config("fault", "spawn:"+os.Getenv("DBPLUGIN_FAULT_CHILD_PID"))}); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	_, sock := db.Plugin.Process.Addr()
	fmt.Printf("READY %d %s\n", db.Plugin.Process.PID(), sock)
	time.Sleep(time.Minute)
}

// Shutdown with 50 calls in flight: each call completes or fails with a clear
// cancellation, and the process exits 0 within 2 s.
func TestReliabilityShutdownUnderLoad(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	db := h.openInit(ctx)
	proc := db.Plugin.Process
	pid := proc.PID()
	_, sock := proc.Addr()

	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			action := "SLEEP 300" // finishes within the grace period
			if i%2 == 1 {
				action = "HANG" // never finishes: must be cut off
			}
			_, _, errs[i] = h.newUser(ctx, db, "r", action)
		}()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	proc.Client.Kill()
	took := time.Since(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("calls still pending 5s after Shutdown")
	}
	completed, cancelled := 0, 0
	for i, err := range errs {
		switch c := codeOf(err); {
		case err == nil:
			completed++
		case c == codes.Unavailable || c == codes.Canceled:
			cancelled++
			if status.Convert(err).Message() == "" {
				t.Errorf("call %d: cancellation without a message", i)
			}
		default:
			t.Errorf("call %d: unclear error %v (code %v)", i, err, c)
		}
	}
	t.Logf("shutdown with %d in flight: %d completed, %d cancelled; Kill returned after %v", n, completed, cancelled, took.Round(time.Millisecond))
	if took >= 2*time.Second {
		t.Errorf("shutdown took %v, want < 2s", took)
	}
	if len(h.Logs.Find("plugin failed to exit gracefully")) != 0 {
		t.Error("host had to SIGKILL the plugin")
	}
	exited := h.Logs.Find("plugin process exited")
	if len(exited) != 1 || exited[0]["error"] != nil {
		t.Errorf("plugin did not exit with status 0: %v", exited)
	}
	waitGone(t, pid, time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s not removed", sock)
	}
}

func readMarker(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func waitMarker(t *testing.T, path, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(readMarker(path), want) {
		if time.Now().After(deadline) {
			t.Fatalf("marker %q not recorded within %v (file: %q)", want, within, readMarker(path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Type and Close answer within the host's 1 s deadline while another id's
// Initialize is stuck; host cancellation and grpc-timeout deadlines reach the
// author's futures (they are dropped).
func TestReliabilityHostDeadlines(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	marker := filepath.Join(t.TempDir(), "dropped")

	stuck := h.open(ctx, "fault")
	initCtx, cancelInit := context.WithCancel(ctx)
	initDone := make(chan error, 1)
	go func() {
		_, err := stuck.Initialize(initCtx, dbplugin.InitializeRequest{Config: h.config("fault", "hang", "drop_marker", marker)})
		initDone <- h.watch.err(err)
	}()
	time.Sleep(200 * time.Millisecond)

	for i := 0; i < 5; i++ {
		start := time.Now()
		other, err := h.OpenDatabase(ctx, "fault") // runs Type with the SDK's 1 s deadline
		if err != nil {
			t.Fatalf("open (Type) while another id's Initialize is stuck: %v", err)
		}
		if typ, err := other.Type(); err != nil || typ != "fault" {
			t.Fatalf("Type: %q %v", typ, err)
		}
		if err := other.Close(); err != nil { // Close RPC with the SDK's 1 s deadline
			t.Fatalf("Close while another id's Initialize is stuck: %v", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("open+Type+Close took %v, want < 1s", took)
		}
	}
	start := time.Now()
	if typ, err := stuck.Type(); err != nil || typ != "fault" {
		t.Fatalf("Type on the stuck id: %q %v", typ, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Type on the stuck id took %v", took)
	}

	// Host cancellation reaches the stuck Initialize.
	cancelInit()
	select {
	case err := <-initDone:
		if codeOf(err) != codes.Canceled {
			t.Errorf("cancelled Initialize: %v, want Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancelled Initialize did not return")
	}
	waitMarker(t, marker, "dropped initialize", 2*time.Second)

	// grpc-timeout: a deadline on a stuck NewUser.
	db := h.openInit(ctx, "drop_marker", marker)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, _, err := h.newUser(dctx, db, "r", "HANG")
	if c := codeOf(err); c != codes.DeadlineExceeded && c != codes.Canceled {
		t.Errorf("NewUser past its deadline: %v, want DeadlineExceeded (or Canceled)", err)
	}
	t.Logf("deadline error after %v: %v", time.Since(start).Round(time.Millisecond), err)
	waitMarker(t, marker, "dropped new_user", 2*time.Second)

	// Close on the once-stuck id still answers in time.
	start = time.Now()
	if err := stuck.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("Close of the cancelled id: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close of the once-stuck id took %v", took)
	}
	t.Logf("drop marker: %q", readMarker(marker))
}

// The gRPC spec answers an expired grpc-timeout with DEADLINE_EXCEEDED; a
// server-side Cancelled reads as if the host had cancelled.
func TestReliabilityDeadlineStatusCode(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	db := h.openInit(ctx)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, _, err := h.newUser(dctx, db, "r", "HANG")
	if codeOf(err) != codes.DeadlineExceeded {
		t.Errorf("NewUser past its grpc-timeout: %v, want code DeadlineExceeded", err)
	}
}
