//! The bodies of the fuzz targets in `fuzz/` (one function per target, taking the raw
//! input), and entry points into parsers that are otherwise private. The fuzz crate calls
//! them under libFuzzer; `tests/fuzz_corpus.rs` replays every committed corpus file through
//! them in the normal test run. None of them panics on any input: a panic reached through
//! one is a bug in the code it calls.

use std::ffi::OsString;

use crate::server::{env::LaunchEnv, tls, unwrap};

/// The `addr` claim of a v4 wrapping token, and the unwrap endpoint built from it.
pub fn unwrap_addr(token: &str) -> Result<String, String> {
    let addr = unwrap::addr_claim(token)?;
    unwrap::unwrap_uri(&addr).map(|uri| uri.to_string())
}

/// The host's answer to the unwrap call (`status`, `body`; `token` is redacted from
/// error messages), then the server TLS configuration built from the certificate and key.
pub fn unwrap_response(status: u16, body: &[u8], token: &str) -> Result<(), String> {
    let status = http::StatusCode::from_u16(status).map_err(|e| e.to_string())?;
    let material = unwrap::parse_unwrap_response(status, body, token)?;
    tls::unwrapped_server_config(&material).map(drop)
}

/// The launch environment as the server reads it (magic cookie, `LaunchEnv::read`,
/// version negotiation against `ours`, the AutoMTLS client certificate), from `get`
/// instead of the process environment. `Ok` is a summary for debugging.
pub fn launch_env(get: impl Fn(&str) -> Option<OsString>, ours: &[u32]) -> Result<String, String> {
    let cookie_ok = LaunchEnv::cookie_ok(&get);
    let env = LaunchEnv::read(&get)?;
    let version = env.negotiate(ours);
    if let Some(pem) = &env.client_cert_pem {
        tls::parse_client_cert(pem)?;
    }
    Ok(format!("cookie_ok={cookie_ok} version={version} {env:?}"))
}

/// The v4 unwrap call's TLS settings from `get` (the environment) and `args` (the
/// plugin's arguments). The result is the settings' `Debug` form.
pub fn unwrap_tls_config(get: impl Fn(&str) -> Option<OsString>, args: &[String]) -> String {
    let config = unwrap::UnwrapTlsConfig::default().with_env_and_args(&get, args);
    format!("{config:?}")
}

/// `config_struct`: bytes as the `google.protobuf.Struct` a host sends, through the Struct →
/// map conversion and back (the round trip keeps every key).
#[cfg(feature = "testkit")]
pub fn config_struct(data: &[u8]) {
    use prost::Message as _;
    let Ok(s) = prost_types::Struct::decode(data) else {
        return;
    };
    let map = crate::testkit::struct_to_config(Some(s));
    if let Ok(again) = crate::testkit::config_to_struct(map.clone()) {
        let round = crate::testkit::struct_to_config(Some(again));
        assert_eq!(round.len(), map.len(), "the config round trip lost keys");
    }
}

/// `template_parse`: text as a username template, parsed, rendered and checked.
pub fn template_parse(data: &[u8]) {
    use crate::toolkit::template::{Template, username_metadata};
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Template::parse(src) {
        let meta = username_metadata("display-name", "role-name");
        let _ = t.render(&meta);
    }
    let _ = Template::parse_and_check(src);
}

/// `statements_split`: text through the statement splitters and placeholder helpers.
pub fn statements_split(data: &[u8]) {
    use crate::toolkit::statements;
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = statements::split(s);
    let _ = statements::split_postgres(s);
    let _ = statements::contains_end_block(s);
    let _ = statements::parse_arbitrary_string_slice(s, ";");
    let _ = statements::quote_identifier(s);
    let _ = statements::substitute(s, &[("name", "u"), ("password", "p")]);
    let _ = statements::Placeholders::new()
        .name(s)
        .password("pw")
        .apply(s);
}

/// `handshake_line`: text as the plugin's handshake line, parsed as the host does.
#[cfg(feature = "testkit")]
pub fn handshake_line(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = crate::testkit::Handshake::parse(line);
    }
}

/// `unwrap_response`: `<status>\n<token>\n<body>` (a status that does not parse means 200)
/// through [`unwrap_addr`] and [`unwrap_response`].
pub fn unwrap_response_input(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let status = parts
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(200);
    // The runtime reads the token from the environment lossily, as here.
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let _ = unwrap_addr(&token);
    let _ = unwrap_response(status, body, &token);
}

/// `launch_env`: an environment block as in `/proc/<pid>/environ` (`KEY=VALUE` entries, each
/// ended by NUL; the first of a repeated key wins, as with `getenv`), then optionally an empty
/// entry (`\0\0`) and the plugin's arguments, NUL-separated; through [`launch_env`] and
/// [`unwrap_tls_config`].
pub fn launch_env_input(data: &[u8]) {
    use std::collections::HashMap;
    use std::os::unix::ffi::OsStringExt as _;
    let (env_block, args_block) = match data.windows(2).position(|w| w == b"\0\0") {
        Some(i) => (&data[..i], Some(&data[i + 2..])),
        None => (data, None),
    };
    let mut vars: HashMap<&[u8], &[u8]> = HashMap::new();
    for entry in env_block.split(|&b| b == 0) {
        if let Some(eq) = entry.iter().position(|&b| b == b'=') {
            vars.entry(&entry[..eq]).or_insert(&entry[eq + 1..]);
        }
    }
    let get = |k: &str| {
        vars.get(k.as_bytes())
            .map(|v| OsString::from_vec(v.to_vec()))
    };
    let args: Vec<String> = args_block
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let _ = launch_env(get, &[4, 5]);
    let _ = unwrap_tls_config(get, &args);
}
