//! The v4 TLS-unwrap bootstrap's parsers: the wrapping token's `addr` claim (and the unwrap
//! URI built from it), and the host's answer to the unwrap call (the JSON holding the server
//! certificate and key, then the TLS configuration built from them).
//!
//! Input: `<status>\n<token>\n<body>`; a status that does not parse means 200.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::unwrap_response_input(data));
