//! Config decoding: arbitrary bytes as the `google.protobuf.Struct` a host sends, through
//! the runtime's Struct → map conversion and back. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = prost_types::Struct::decode(data) else {
        return;
    };
    let map = dbplugin::testkit::struct_to_config(Some(s));
    // Back to a Struct (what Initialize answers with); errors are fine, panics are not.
    if let Ok(again) = dbplugin::testkit::config_to_struct(map.clone()) {
        let round = dbplugin::testkit::struct_to_config(Some(again));
        assert_eq!(round.len(), map.len());
    }
});
