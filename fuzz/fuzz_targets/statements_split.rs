//! The statement splitters and placeholder helpers.
#![no_main]

use dbplugin::toolkit::statements;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = statements::split(s);
    let _ = statements::split_postgres(s);
    let _ = statements::contains_end_block(s);
    let _ = statements::parse_arbitrary_string_slice(s, ";");
    let _ = statements::quote_identifier(s);
    let _ = statements::substitute(s, &[("name", "u"), ("password", "p")]);
    let _ = statements::Placeholders::new().name(s).password("pw").apply(s);
});
