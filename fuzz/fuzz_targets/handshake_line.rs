//! The go-plugin handshake line parser of the test host (`testkit::Handshake::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = dbplugin::testkit::Handshake::parse(line);
    }
});
