//! The launch environment parser (`LaunchEnv::read`, the magic cookie, version negotiation,
//! `PLUGIN_CLIENT_CERT`) and the v4 unwrap call's TLS settings from environment and arguments.
//!
//! Input: an environment block as in `/proc/<pid>/environ` (`KEY=VALUE` entries, each ended
//! by NUL; the first of a repeated key wins, as with `getenv`), then optionally an empty
//! entry (`\0\0`) followed by the plugin's arguments, NUL-separated.
#![no_main]

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

use dbplugin::__fuzz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    let _ = __fuzz::launch_env(get, &[4, 5]);
    let _ = __fuzz::unwrap_tls_config(get, &args);
});
