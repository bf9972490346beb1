//! What the host tells the plugin through its environment (go-plugin and the Vault SDK).

use std::ffi::OsString;
use std::path::PathBuf;

/// go-plugin's magic cookie for database plugins (v4 and v5 alike).
pub(crate) const COOKIE_KEY: &str = "VAULT_DATABASE_PLUGIN";
pub(crate) const COOKIE_VALUE: &str = "926a0820-aea2-be28-51d6-83cdf00e8edb";

/// What go-plugin prints on stderr when the cookie is missing (three lines).
pub(crate) const NOT_A_PLUGIN_MESSAGE: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// Which network the listener uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Network {
    Unix,
    Tcp,
}

/// The launch parameters, read once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct LaunchEnv {
    /// `PLUGIN_PROTOCOL_VERSIONS`, the parseable entries.
    pub(crate) host_versions: Vec<u32>,
    /// Entries of `PLUGIN_PROTOCOL_VERSIONS` that did not parse (reported like go-plugin).
    pub(crate) invalid_versions: Vec<String>,
    pub(crate) min_port: u16,
    pub(crate) max_port: u16,
    /// `PLUGIN_CLIENT_CERT`: the host's certificate (PEM), when AutoMTLS is on.
    pub(crate) client_cert_pem: Option<String>,
    pub(crate) socket_dir: Option<PathBuf>,
    pub(crate) socket_group: Option<String>,
    pub(crate) network: Network,
    pub(crate) metadata_mode: bool,
    /// `BAO_`/`VAULT_PLUGIN_AUTOMTLS_ENABLED` is `true`.
    pub(crate) auto_mtls_enabled: bool,
    /// `PLUGIN_MULTIPLEX_GRPC` parses as true: serve yamux-multiplexed connections.
    pub(crate) multiplex_grpc: bool,
    /// `PLUGIN_MULTIPLEX_GRPC` is non-empty: announce the 7th handshake field.
    pub(crate) multiplex_grpc_set: bool,
}

/// Reads a variable the way OpenBao does: the `BAO_` name wins when present (even empty),
/// else the `VAULT_` name.
pub(crate) fn read_bao_or_vault(
    get: &impl Fn(&str) -> Option<OsString>,
    suffix: &str,
) -> Option<String> {
    get(&format!("BAO_{suffix}"))
        .or_else(|| get(&format!("VAULT_{suffix}")))
        .map(|v| v.to_string_lossy().into_owned())
}

fn non_empty(v: Option<OsString>) -> Option<String> {
    v.map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

/// Go's `strconv.ParseBool` true values.
fn go_parse_bool_true(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

impl LaunchEnv {
    /// Whether the magic cookie is set correctly.
    pub(crate) fn cookie_ok(get: &impl Fn(&str) -> Option<OsString>) -> bool {
        get(COOKIE_KEY).is_some_and(|v| v == COOKIE_VALUE)
    }

    pub(crate) fn read(get: &impl Fn(&str) -> Option<OsString>) -> Result<Self, String> {
        let mut host_versions = Vec::new();
        let mut invalid_versions = Vec::new();
        if let Some(list) = non_empty(get("PLUGIN_PROTOCOL_VERSIONS")) {
            for piece in list.split(',') {
                match piece.parse::<u32>() {
                    Ok(v) => host_versions.push(v),
                    Err(_) => invalid_versions.push(piece.to_owned()),
                }
            }
        }
        let port = |name: &str| -> Result<u16, String> {
            match non_empty(get(name)) {
                None => Ok(0),
                Some(v) => v.parse::<u16>().map_err(|_| {
                    format!("{name}: expected a port number from 0 to 65535, got {v:?}")
                }),
            }
        };
        let min_port = port("PLUGIN_MIN_PORT")?;
        let max_port = port("PLUGIN_MAX_PORT")?;
        if min_port > max_port {
            return Err(format!(
                "PLUGIN_MIN_PORT ({min_port}) is greater than PLUGIN_MAX_PORT ({max_port})"
            ));
        }
        let network = match non_empty(get("DBPLUGIN_NETWORK")).as_deref() {
            None | Some("unix") => Network::Unix,
            Some("tcp") => Network::Tcp,
            Some(other) => {
                return Err(format!(
                    "DBPLUGIN_NETWORK: expected `unix` or `tcp`, got {other:?}"
                ));
            }
        };
        let metadata_mode =
            read_bao_or_vault(get, "PLUGIN_METADATA_MODE").is_some_and(|v| v == "true");
        let auto_mtls_enabled =
            read_bao_or_vault(get, "PLUGIN_AUTOMTLS_ENABLED").is_some_and(|v| v == "true");
        let multiplex = non_empty(get("PLUGIN_MULTIPLEX_GRPC"));
        Ok(LaunchEnv {
            host_versions,
            invalid_versions,
            min_port,
            max_port,
            client_cert_pem: non_empty(get("PLUGIN_CLIENT_CERT")),
            socket_dir: non_empty(get("PLUGIN_UNIX_SOCKET_DIR")).map(PathBuf::from),
            socket_group: non_empty(get("PLUGIN_UNIX_SOCKET_GROUP")),
            network,
            metadata_mode,
            auto_mtls_enabled,
            multiplex_grpc: multiplex.as_deref().is_some_and(go_parse_bool_true),
            multiplex_grpc_set: multiplex.is_some(),
        })
    }

    /// go-plugin's rule: the plugin's highest version the host also offers; with none in
    /// common, the plugin's lowest (the host then refuses it with a clear message).
    pub(crate) fn negotiate(&self, ours: &[u32]) -> u32 {
        let mut sorted = ours.to_vec();
        sorted.sort_unstable();
        sorted
            .iter()
            .rev()
            .find(|v| self.host_versions.contains(v))
            .or_else(|| sorted.first())
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn cookie_must_match_exactly() {
        assert!(!LaunchEnv::cookie_ok(&env(&[])));
        assert!(!LaunchEnv::cookie_ok(&env(&[(COOKIE_KEY, "x")])));
        assert!(LaunchEnv::cookie_ok(&env(&[(COOKIE_KEY, COOKIE_VALUE)])));
    }

    #[test]
    fn negotiation_takes_highest_common_else_lowest() {
        let e = LaunchEnv::read(&env(&[("PLUGIN_PROTOCOL_VERSIONS", "6,5")])).unwrap();
        assert_eq!(e.negotiate(&[5, 6]), 6);
        assert_eq!(e.negotiate(&[5]), 5);
        let e = LaunchEnv::read(&env(&[("PLUGIN_PROTOCOL_VERSIONS", "3,4")])).unwrap();
        assert_eq!(e.negotiate(&[5, 6]), 5);
        let e = LaunchEnv::read(&env(&[("PLUGIN_PROTOCOL_VERSIONS", "x,5")])).unwrap();
        assert_eq!(e.invalid_versions, vec!["x".to_string()]);
        assert_eq!(e.negotiate(&[5, 6]), 5);
        let e = LaunchEnv::read(&env(&[])).unwrap();
        assert_eq!(e.negotiate(&[5, 6]), 5);
    }

    #[test]
    fn ports_are_checked() {
        assert!(LaunchEnv::read(&env(&[("PLUGIN_MIN_PORT", "abc")])).is_err());
        assert!(
            LaunchEnv::read(&env(&[
                ("PLUGIN_MIN_PORT", "20"),
                ("PLUGIN_MAX_PORT", "10")
            ]))
            .is_err()
        );
        let e = LaunchEnv::read(&env(&[
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
        ]))
        .unwrap();
        assert_eq!((e.min_port, e.max_port), (10000, 25000));
    }

    #[test]
    fn bao_name_wins_even_when_empty() {
        let e = env(&[("BAO_X", ""), ("VAULT_X", "true")]);
        assert_eq!(read_bao_or_vault(&e, "X").as_deref(), Some(""));
        let e = env(&[("VAULT_X", "true")]);
        assert_eq!(read_bao_or_vault(&e, "X").as_deref(), Some("true"));
    }
}
