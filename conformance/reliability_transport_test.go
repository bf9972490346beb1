package conformance

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
)

type rawPlugin struct {
	cmd        *exec.Cmd
	network    string
	addr       string
	serverCert *x509.Certificate
	stderr     *lockedBuffer
	waited     chan error
}

// startRawFault launches the fault plugin as the host would (AutoMTLS with
// hostPEM) plus extra env, and reads its handshake line.
func startRawFault(t *testing.T, hostPEM []byte, extra ...string) *rawPlugin {
	t.Helper()
	bin := requireFaultBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = append(withoutKey(os.Environ(), "DBPLUGIN_NETWORK"), cookie,
		"PLUGIN_PROTOCOL_VERSIONS=5,6", "PLUGIN_CLIENT_CERT="+string(hostPEM),
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true", "VAULT_VERSION="+VaultVersion)
	cmd.Env = append(cmd.Env, extra...)
	p := &rawPlugin{cmd: cmd, stderr: &lockedBuffer{}, waited: make(chan error, 1)}
	cmd.Stderr = tapStderr(t, "fault-plugin", p.stderr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("plugin stderr:\n%s", p.stderr.String())
		}
	})
	line := firstLine(t, stdout, 10*time.Second)
	m := regexp.MustCompile(`^1\|6\|(unix|tcp)\|([^|]+)\|grpc\|([A-Za-z0-9+/]+)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("handshake line %q", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(m[3])
	if err != nil {
		t.Fatal(err)
	}
	if p.serverCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.network, p.addr = m[1], m[2]
	return p
}

func (p *rawPlugin) tlsConfig(minV, maxV uint16, certs ...tls.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.serverCert)
	return &tls.Config{Certificates: certs, RootCAs: roots, ServerName: "localhost",
		NextProtos: []string{"h2"}, MinVersion: minV, MaxVersion: maxV}
}

// TLS below 1.2 is refused; 1.2 and 1.3 with the host certificate work; no
// certificate, another certificate and plaintext are refused.
func TestReliabilityTransportSecurity(t *testing.T) {
	hostCert, hostPEM := p521Cert(t)
	otherCert, _ := p521Cert(t)
	p := startRawFault(t, hostPEM)
	if p.network != "unix" {
		t.Fatalf("network %s", p.network)
	}
	for _, v := range []struct {
		name     string
		min, max uint16
		want     bool
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
	} {
		state, err := rawTLS(t, p.addr, p.tlsConfig(v.min, v.max, hostCert))
		got := state != nil && accepted(err)
		t.Logf("%s with the host certificate: accepted=%v (%v)", v.name, got, err)
		if got != v.want {
			t.Errorf("%s: accepted=%v, want %v", v.name, got, v.want)
		}
	}
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":    p.tlsConfig(tls.VersionTLS12, 0),
		"another certificate":      p.tlsConfig(tls.VersionTLS12, 0, otherCert),
		"another cert, TLS 1.2":    p.tlsConfig(tls.VersionTLS12, tls.VersionTLS12, otherCert),
		"no client cert, TLS 1.2 ": p.tlsConfig(tls.VersionTLS12, tls.VersionTLS12),
	} {
		if state, err := rawTLS(t, p.addr, cfg); state != nil && accepted(err) {
			t.Errorf("%s: session accepted", name)
		}
		if err := healthCheck(dialGRPC(t, p.addr, credentials.NewTLS(cfg))); err == nil {
			t.Errorf("%s: RPC succeeded", name)
		}
	}
	// Plaintext bytes (an HTTP/2 preface) on the socket: closed, nothing served.
	conn, err := netDial(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	_ = conn.Close()
	if n > 0 && bytes.Contains(buf[:n], []byte{0x00, 0x00}) && !bytes.HasPrefix(buf[:n], []byte{0x15}) {
		t.Errorf("plaintext preface answered with %x", buf[:n])
	}
	if good := healthCheck(dialGRPC(t, p.addr, credentials.NewTLS(p.tlsConfig(tls.VersionTLS12, 0, hostCert)))); good != nil {
		t.Fatalf("control: health check with the host certificate: %v", good)
	}
}

// The socket file is 0600, or 0660 owned by PLUGIN_UNIX_SOCKET_GROUP.
func TestReliabilitySocketMode(t *testing.T) {
	_, hostPEM := p521Cert(t)
	dir := t.TempDir()
	p := startRawFault(t, hostPEM, "PLUGIN_UNIX_SOCKET_DIR="+dir)
	st, err := os.Stat(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p.addr) != dir {
		t.Errorf("socket %s not in PLUGIN_UNIX_SOCKET_DIR %s", p.addr, dir)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket mode %o, want 600", mode)
	}
	for _, group := range []string{"4321", "daemon"} {
		q := startRawFault(t, hostPEM, "PLUGIN_UNIX_SOCKET_DIR="+dir, "PLUGIN_UNIX_SOCKET_GROUP="+group)
		st, err := os.Stat(q.addr)
		if err != nil {
			t.Fatal(err)
		}
		gid := st.Sys().(*syscall.Stat_t).Gid
		want := uint32(4321)
		if group == "daemon" {
			want = lookupGID(t, "daemon")
		}
		if mode := st.Mode().Perm(); mode != 0o660 || gid != want {
			t.Errorf("group %s: socket mode %o gid %d, want 660 gid %d", group, mode, gid, want)
		}
	}
	// An unknown group name: a clear start-up error, exit 1.
	bin := requireFaultBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), cookie, "PLUGIN_PROTOCOL_VERSIONS=5,6", "PLUGIN_UNIX_SOCKET_DIR="+dir,
		"PLUGIN_UNIX_SOCKET_GROUP=no-such-group-xyz")
	var stderr bytes.Buffer
	cmd.Stderr = tapStderr(t, "fault-plugin", &stderr)
	err = runWithTimeout(t, cmd, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "PLUGIN_UNIX_SOCKET_GROUP") {
		t.Errorf("unknown group: exit %v, stderr %q", err, stderr.String())
	}
}

func lookupGID(t *testing.T, name string) uint32 {
	raw, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Skip("no /etc/group")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			n, _ := strconv.Atoi(f[2])
			return uint32(n)
		}
	}
	t.Skipf("no group %s", name)
	return 0
}

// With DBPLUGIN_NETWORK=tcp the only listening socket is on 127.0.0.1.
func TestReliabilityTCPLoopbackOnly(t *testing.T) {
	_, hostPEM := p521Cert(t)
	p := startRawFault(t, hostPEM, "DBPLUGIN_NETWORK=tcp")
	if p.network != "tcp" || !strings.HasPrefix(p.addr, "127.0.0.1:") {
		t.Fatalf("handshake network %s address %s, want tcp 127.0.0.1:<port>", p.network, p.addr)
	}
	listeners := listeningSockets(t, p.cmd.Process.Pid)
	if len(listeners) == 0 {
		t.Fatal("no listening TCP socket found for the plugin")
	}
	for _, l := range listeners {
		if !strings.HasPrefix(l, "127.0.0.1:") {
			t.Errorf("plugin listens on %s", l)
		}
	}
	t.Logf("listening: %v", listeners)
}

// listeningSockets maps the pid's socket fds to LISTEN entries of
// /proc/<pid>/net/tcp{,6}.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"tcp", "tcp6"} {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			out = append(out, decodeProcAddr(f[1]))
		}
	}
	return out
}

func decodeProcAddr(s string) string {
	host, port, _ := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if len(host) == 8 {
		v, _ := strconv.ParseUint(host, 16, 32)
		return fmt.Sprintf("%d.%d.%d.%d:%d", byte(v), byte(v>>8), byte(v>>16), byte(v>>24), p)
	}
	return fmt.Sprintf("[%s]:%d", host, p)
}

// mlock: with VAULT_/BAO_PLUGIN_MLOCK_ENABLED=true the memory is locked; when
// locking fails (RLIMIT_MEMLOCK=0, no CAP_IPC_LOCK) the plugin exits 1 with
// one clear error line naming the fix.
func TestReliabilityMlock(t *testing.T) {
	_, hostPEM := p521Cert(t)
	for _, key := range []string{"VAULT_PLUGIN_MLOCK_ENABLED", "BAO_PLUGIN_MLOCK_ENABLED"} {
		p := startRawFault(t, hostPEM, key+"=true")
		locked := procStatusKB(t, p.cmd.Process.Pid, "VmLck")
		t.Logf("%s=true: VmLck %d kB", key, locked)
		if locked == 0 {
			t.Errorf("%s=true: VmLck is 0", key)
		}
	}
	q := startRawFault(t, hostPEM)
	if l := procStatusKB(t, q.cmd.Process.Pid, "VmLck"); l != 0 {
		t.Errorf("without mlock: VmLck %d kB", l)
	}

	capsh, err1 := exec.LookPath("capsh")
	prlimit, err2 := exec.LookPath("prlimit")
	if err1 != nil || err2 != nil {
		t.Skip("capsh or prlimit missing: cannot make mlockall fail")
	}
	bin := requireFaultBinary(t)
	cmd := exec.Command(prlimit, "--memlock=0:0", capsh, "--drop=cap_ipc_lock", "--", "-c", `exec "$0"`, bin)
	cmd.Env = append(os.Environ(), cookie, "PLUGIN_PROTOCOL_VERSIONS=5,6", "VAULT_PLUGIN_MLOCK_ENABLED=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tapStderr(t, "fault-plugin", &stderr)
	err := runWithTimeout(t, cmd, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("mlock failure: exit %v, want 1; stderr %q", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 {
		t.Errorf("want one stderr line, got %d: %q", len(lines), stderr.String())
	}
	for _, want := range []string{"failed to lock memory", "IPC_LOCK", "disable_mlock"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("a handshake was printed although mlock failed: %q", stdout.String())
	}
	t.Logf("mlock failure line: %s", strings.TrimSpace(stderr.String()))
}
