//! Config decoding: arbitrary bytes as the `google.protobuf.Struct` a host sends, through
//! the runtime's Struct → map conversion and back. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the runtime (`dbplugin::__fuzz`), where the corpus replay test runs it too.
fuzz_target!(|data: &[u8]| dbplugin::__fuzz::config_struct(data));
