package conformance

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	v4 "github.com/hashicorp/vault/sdk/database/dbplugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
)

// V4HandshakeConfig equals the (unexported) handshake of the SDK's v4 client.
var V4HandshakeConfig = plugin.HandshakeConfig{
	ProtocolVersion:  4,
	MagicCookieKey:   "VAULT_DATABASE_PLUGIN",
	MagicCookieValue: "926a0820-aea2-be28-51d6-83cdf00e8edb",
}

// V4PluginSets are the versioned plugin sets the SDK's v4 client offers.
func V4PluginSets() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		3: {"database": new(v4.GRPCDatabasePlugin)},
		4: {"database": new(v4.GRPCDatabasePlugin)},
	}
}

// OpenV4 launches name through the SDK's v4 client, v4.NewPluginClient, the
// way Vault does: metadataMode false means AutoMTLS off and a TLS
// configuration handed over through a response-wrapping token; true means
// plaintext.
func (c *Catalog) OpenV4(ctx context.Context, name string, metadataMode bool) (v4.Database, error) {
	runner, err := c.LookupPlugin(ctx, name, consts.PluginTypeDatabase)
	if err != nil {
		return nil, err
	}
	return v4.NewPluginClient(ctx, c, runner, c.Logger.Named(name), metadataMode)
}

// V4DB is a v4 database client on a catalog-managed process.
type V4DB struct {
	v4.Database
	Plugin *PluginClient
}

// Close closes the database and releases the process.
func (d *V4DB) Close() error {
	err := d.Database.Close()
	return errors.Join(err, d.Plugin.Close())
}

// OpenV4AutoMTLS launches name with the v4 plugin sets and handshake but with
// AutoMTLS on (no unwrap token), as a v5-era launcher would.
func (c *Catalog) OpenV4AutoMTLS(ctx context.Context, name string) (*V4DB, error) {
	pc, err := c.newClient(ctx, pluginutil.PluginClientConfig{
		Name:            name,
		PluginType:      consts.PluginTypeDatabase,
		PluginSets:      V4PluginSets(),
		HandshakeConfig: V4HandshakeConfig,
		Logger:          c.Logger.Named(name),
		AutoMTLS:        true,
		Wrapper:         c,
	})
	if err != nil {
		return nil, err
	}
	raw, err := pc.Dispense("database")
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	db, ok := raw.(v4.Database)
	if !ok {
		_ = pc.Close()
		return nil, fmt.Errorf("dispensed %T is not a v4 database", raw)
	}
	return &V4DB{Database: db, Plugin: pc}, nil
}

// VersionedDB is what the database backend holds after its version probe:
// exactly one of V5 and V4 is set.
type VersionedDB struct {
	V5 dbplugin.Database
	V4 v4.Database
	// V5Err is why the v5 attempt failed when V4 is set.
	V5Err error
}

func (d *VersionedDB) Close() error {
	if d.V5 != nil {
		return d.V5.Close()
	}
	return d.V4.Close()
}

// OpenVersioned repeats the database backend's newDatabaseWrapper: the v5
// plugin factory first and, if that fails for any reason, the v4 factory.
func (c *Catalog) OpenVersioned(ctx context.Context, name string) (*VersionedDB, error) {
	db5, err5 := dbplugin.PluginFactoryVersion(ctx, name, "", c, c.Logger)
	if err5 == nil {
		return &VersionedDB{V5: db5}, nil
	}
	db4, err4 := v4.PluginFactoryVersion(ctx, name, "", c, c.Logger)
	if err4 == nil {
		return &VersionedDB{V4: db4, V5Err: err5}, nil
	}
	return nil, fmt.Errorf("invalid database version: %w", errors.Join(err5, err4))
}
