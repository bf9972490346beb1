//! The statement splitters and placeholder helpers.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::statements_split(data));
