//! The v4 TLS-unwrap bootstrap's parsers: the wrapping token's `addr` claim (and the unwrap
//! URI built from it), and the host's answer to the unwrap call (the JSON holding the server
//! certificate and key, then the TLS configuration built from them).
//!
//! Input: `<status>\n<token>\n<body>`; a status that does not parse means 200.
#![no_main]

use dbplugin::__fuzz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let status = parts
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(200);
    // The runtime reads the token from the environment lossily, as here.
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let _ = __fuzz::unwrap_addr(&token);
    let _ = __fuzz::unwrap_response(status, body, &token);
});
