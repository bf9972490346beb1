// Command goinmem is a Go implementation of the in-memory example plugin's
// contract, served with the SDK's own ServeMultiplex. It exists to check the
// conformance harness itself: build it and point DBPLUGIN_INMEM_BIN at it.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/logical"
)

var logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, JSONFormat: true, Output: os.Stderr})

type user struct {
	CredentialType string   `json:"credential_type"`
	PasswordSHA256 string   `json:"password_sha256"`
	PublicKey      string   `json:"public_key"`
	Subject        string   `json:"subject"`
	Expiration     string   `json:"expiration"`
	Statements     []string `json:"statements"`
}

type db struct {
	mu       sync.Mutex
	ready    bool
	snapshot string
	users    map[string]*user
}

func (d *db) PluginVersion() logical.PluginVersion { return logical.PluginVersion{Version: "v0.1.0"} }

func (d *db) Type() (string, error) { return "inmem", nil }
func (d *db) Close() error          { return nil }

func (d *db) Initialize(_ context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	url, _ := req.Config["connection_url"].(string)
	if req.VerifyConnection && url != "" && !strings.HasPrefix(url, "inmem://") {
		return dbplugin.InitializeResponse{}, errors.New("unable to connect: unsupported scheme")
	}
	d.snapshot, _ = req.Config["snapshot_path"].(string)
	d.users, d.ready = map[string]*user{}, true
	out := map[string]any{}
	for k, v := range req.Config {
		out[k] = v
	}
	resp := dbplugin.InitializeResponse{Config: out}
	resp.SetSupportedCredentialTypes([]dbplugin.CredentialType{dbplugin.CredentialTypePassword,
		dbplugin.CredentialTypeRSAPrivateKey, dbplugin.CredentialTypeClientCertificate})
	return resp, d.save()
}

func (d *db) save() error {
	if d.snapshot == "" {
		return nil
	}
	b, err := json.Marshal(map[string]any{"users": d.users})
	if err != nil {
		return err
	}
	tmp := d.snapshot + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(d.snapshot))
}

func trunc(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func sum(s string) string {
	if s == "" {
		return ""
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (d *db) NewUser(_ context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ready {
		return dbplugin.NewUserResponse{}, errors.New("not initialized")
	}
	suffix, _ := base62.Random(10)
	name := fmt.Sprintf("v-%s-%s-%s", trunc(req.UsernameConfig.DisplayName), trunc(req.UsernameConfig.RoleName), suffix)
	u := &user{CredentialType: req.CredentialType.String(), PasswordSHA256: sum(req.Password),
		PublicKey: string(req.PublicKey), Subject: req.Subject,
		Expiration: req.Expiration.UTC().Format(time.RFC3339)}
	r := strings.NewReplacer("{{name}}", name, "{{username}}", name, "{{password}}", "[password]",
		"{{expiration}}", req.Expiration.Format("2006-01-02 15:04:05-0700"))
	for _, c := range req.Statements.Commands {
		c = r.Replace(c)
		if strings.HasPrefix(c, "ERROR") {
			return dbplugin.NewUserResponse{}, fmt.Errorf("statement failed: %s", c)
		}
		u.Statements = append(u.Statements, c)
	}
	d.users[name] = u
	return dbplugin.NewUserResponse{Username: name}, d.save()
}

func (d *db) UpdateUser(_ context.Context, req dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[req.Username]
	if !ok {
		return dbplugin.UpdateUserResponse{}, fmt.Errorf("user %q does not exist", req.Username)
	}
	if req.Password != nil {
		u.PasswordSHA256 = sum(req.Password.NewPassword)
	}
	if req.PublicKey != nil {
		u.PublicKey = string(req.PublicKey.NewPublicKey)
	}
	if req.Expiration != nil {
		u.Expiration = req.Expiration.NewExpiration.UTC().Format(time.RFC3339)
	}
	return dbplugin.UpdateUserResponse{}, d.save()
}

func (d *db) DeleteUser(_ context.Context, req dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users[req.Username]; !ok {
		logger.Warn("user does not exist; nothing to delete", "username", req.Username)
		return dbplugin.DeleteUserResponse{}, nil
	}
	delete(d.users, req.Username)
	return dbplugin.DeleteUserResponse{}, d.save()
}

func main() {
	// The Go factory cannot see the multiplex id, so unlike the Rust runtime
	// this reference logs no "database instance created" line.
	dbplugin.ServeMultiplex(func() (any, error) { return &db{}, nil })
}
