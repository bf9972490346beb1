package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	v4 "github.com/hashicorp/vault/sdk/database/dbplugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

const cookie = "VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb"

func TestRunWithoutCookie(t *testing.T) {
	bin := requireBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = withoutKey(os.Environ(), "VAULT_DATABASE_PLUGIN")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tapStderr(t, "inmem-plugin", &stderr)
	err := runWithTimeout(t, cmd, 10*time.Second)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("exit = %v, want status 1", err)
	}
	want := "This binary is a plugin. These are not meant to be executed directly.\n" +
		"Please execute the program that consumes these plugins, which will\n" +
		"load any plugins automatically\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q\nwant %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

// A v4-only host (protocol versions 3,4) must get a clean version mismatch.
func TestLegacyProtocolVersionsRejected(t *testing.T) {
	t.Run("v4 client", func(t *testing.T) {
		h := newHarness(t)
		h.register("inmem")
		runner, err := h.LookupPlugin(context.Background(), "inmem", consts.PluginTypeDatabase)
		if err != nil {
			t.Fatal(err)
		}
		// Metadata mode, as the registration fallback launches it: no TLS and
		// no unwrap token are involved in the version negotiation.
		err = guarded(t, 20*time.Second, func() error {
			db, err := v4.NewPluginClient(context.Background(), h.Catalog, runner, h.Logger, true)
			if err == nil {
				_ = db.Close()
			}
			return hygiene.err(t.Name(), "v4.NewPluginClient", err)
		})
		assertIncompatible(t, err)
		waitLog(t, h.Logs, "plugin process exited")
	})
	t.Run("go-plugin AutoMTLS", func(t *testing.T) {
		h := newHarness(t)
		bin := requireBinary(t)
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig: dbplugin.HandshakeConfig,
			VersionedPlugins: map[int]plugin.PluginSet{
				3: {"database": new(v4.GRPCDatabasePlugin)},
				4: {"database": new(v4.GRPCDatabasePlugin)},
			},
			Cmd:              exec.Command(bin),
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			AutoMTLS:         true,
			Logger:           h.Logger,
		})
		defer client.Kill()
		err := guarded(t, 20*time.Second, func() error { _, err := client.Client(); return hygiene.err(t.Name(), "go-plugin Client", err) })
		assertIncompatible(t, err)
		waitLog(t, h.Logs, "plugin process exited")
	})
}

func assertIncompatible(t *testing.T, err error) {
	t.Helper()
	want := regexp.MustCompile(`^incompatible API version with plugin\. Plugin version: \d+, Client versions: \[(3 4|4 3)\]$`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("error = %v, want match %s", err, want)
	}
}

// Raw TLS against the plugin's socket: only the host's exact certificate
// gets through.
func TestAutoMTLSRaw(t *testing.T) {
	bin := requireBinary(t)
	hostCert, hostPEM := p521Cert(t)
	otherCert, _ := p521Cert(t)

	cmd := exec.Command(bin)
	cmd.Env = append(withoutKey(os.Environ(), "DBPLUGIN_NETWORK"), cookie,
		"PLUGIN_PROTOCOL_VERSIONS=5,6", "PLUGIN_CLIENT_CERT="+string(hostPEM),
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true", "VAULT_PLUGIN_METADATA_MODE=false", "VAULT_VERSION="+VaultVersion)
	var stderr bytes.Buffer
	cmd.Stderr = tapStderr(t, "inmem-plugin", &stderr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("plugin stderr:\n%s", stderr.String())
		}
	})

	line := firstLine(t, stdout, 10*time.Second)
	m := regexp.MustCompile(`^1\|6\|unix\|(/[^|]+)\|grpc\|([A-Za-z0-9+/]+)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("handshake line %q does not match 1|6|unix|<path>|grpc|<unpadded base64>", line)
	}
	sock := m[1]
	der, err := base64.RawStdEncoding.DecodeString(m[2])
	if err != nil {
		t.Fatalf("field 6 is not unpadded std base64: %v", err)
	}
	serverCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("field 6 is not a DER certificate: %v", err)
	}
	if !slices.Contains(serverCert.DNSNames, "localhost") {
		t.Fatalf("plugin certificate DNS SANs %v lack localhost", serverCert.DNSNames)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	tlsConfig := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: certs, RootCAs: roots, ServerName: "localhost",
			NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	}

	// (iv) control: the right certificate.
	state, readErr := rawTLS(t, sock, tlsConfig(hostCert))
	if state == nil {
		t.Fatalf("TLS handshake with the host certificate failed: %v", readErr)
	}
	if state.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN negotiated %q, want h2", state.NegotiatedProtocol)
	}
	if len(state.PeerCertificates) == 0 || !bytes.Equal(state.PeerCertificates[0].Raw, der) {
		t.Errorf("served certificate differs from the announced one")
	}
	if !accepted(readErr) {
		t.Errorf("connection with the right certificate was closed: %v", readErr)
	}
	good := dialGRPC(t, sock, credentials.NewTLS(tlsConfig(hostCert)))
	if err := healthCheck(good); err != nil {
		t.Fatalf("health check with the right certificate: %v", err)
	}

	// (i) no client certificate, (ii) another P-521 certificate.
	for name, cfg := range map[string]*tls.Config{"no certificate": tlsConfig(), "other certificate": tlsConfig(otherCert)} {
		if state, err := rawTLS(t, sock, cfg); state != nil && accepted(err) {
			t.Errorf("%s: TLS session accepted (read err %v)", name, err)
		}
		if err := healthCheck(dialGRPC(t, sock, credentials.NewTLS(cfg))); err == nil {
			t.Errorf("%s: RPC succeeded", name)
		}
	}
	// (iii) plaintext h2c.
	if err := healthCheck(dialGRPC(t, sock, insecure.NewCredentials())); err == nil {
		t.Error("plaintext h2c RPC succeeded")
	}

	// Controller shutdown on the good connection: exit 0, socket removed. The
	// host ignores the RPC's result (a Go server often drops the connection
	// before the reply is flushed), so only a hang or an exit matters.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hygiene.err(t.Name(), "Shutdown", good.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})); err != nil {
		t.Logf("Shutdown RPC returned %v (ignored, as by the host)", err)
	}
	_ = good.Close()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("plugin exit after Shutdown: %v, want status 0", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("plugin still running 2s after Shutdown")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s not removed (stat err %v)", sock, err)
	}
}

// rawTLS dials the socket, handshakes and then reads for a short while. A
// nil state means the handshake itself failed; a nil error (the server's
// HTTP/2 preface arrived) or a timeout means the server kept the session.
func rawTLS(t *testing.T, sock string, cfg *tls.Config) (*tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	state := conn.ConnectionState()
	_, err = conn.Read(make([]byte, 1))
	return &state, err
}

func accepted(readErr error) bool {
	var ne net.Error
	return readErr == nil || errors.As(readErr, &ne) && ne.Timeout()
}

func dialGRPC(t *testing.T, sock string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///unused",
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func healthCheck(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	if err != nil {
		return hygiene.err("healthCheck", "Check", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %v", resp.Status)
	}
	return nil
}

// p521Cert makes a self-signed CA:TRUE P-521 certificate shaped like the one
// go-plugin's AutoMTLS host generates.
func p521Cert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if der, err := x509.MarshalECPrivateKey(key); err == nil {
		secretKey(t, der)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func firstLine(t *testing.T, r interface{ Read([]byte) (int, error) }, within time.Duration) string {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep draining, as the host does
		}
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("plugin closed stdout without a handshake line")
		}
		return l
	case <-time.After(within):
		t.Fatalf("no handshake line within %v", within)
	}
	return ""
}

// guarded runs f with a deadline and turns a panic into a test failure.
func guarded(t *testing.T, within time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("host panicked: %v", p)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("host call hung for more than %v", within)
		return nil
	}
}

func waitLog(t *testing.T, logs *LogBuffer, msg string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for len(logs.Find(msg)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("host never logged %q", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runWithTimeout(t *testing.T, cmd *exec.Cmd, within time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not exit within %v", cmd.Path, within)
		return nil
	}
}

func withoutKey(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return len(kv) > len(key) && kv[:len(key)+1] == key+"="
	})
}
