//! The launch environment parser (`LaunchEnv::read`, the magic cookie, version negotiation,
//! `PLUGIN_CLIENT_CERT`) and the v4 unwrap call's TLS settings from environment and arguments.
//!
//! Input: an environment block as in `/proc/<pid>/environ` (`KEY=VALUE` entries, each ended
//! by NUL; the first of a repeated key wins, as with `getenv`), then optionally an empty
//! entry (`\0\0`) followed by the plugin's arguments, NUL-separated.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::launch_env_input(data));
