//! The username template parser and renderer (Go `text/template` subset).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::template_parse(data));
