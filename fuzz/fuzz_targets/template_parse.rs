//! The username template parser and renderer (Go `text/template` subset).
#![no_main]

use dbplugin::toolkit::template::{Template, username_metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Template::parse(src) {
        let meta = username_metadata("display-name", "role-name");
        let _ = t.render(&meta);
    }
    let _ = Template::parse_and_check(src);
});
