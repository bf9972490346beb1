//! The go-plugin handshake line parser of the test host (`testkit::Handshake::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::handshake_line(data));
