//! Hostile inputs to the public parsing API: giant, deeply nested or malformed data gives
//! an error (or a result) in bounded time, never a panic or a stack overflow.

use std::time::{Duration, Instant};

use dbplugin::testkit::{config_to_struct, struct_to_config};
use dbplugin::toolkit::statements;
use dbplugin::toolkit::template::{Template, username_metadata};

fn bounded<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "{what} took {:?}", start.elapsed());
    out
}

fn nested(depth: usize) {
    let mut v = prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue("leaf".into())),
    };
    for _ in 0..depth {
        let mut s = prost_types::Struct::default();
        s.fields.insert("a".into(), v);
        v = prost_types::Value {
            kind: Some(prost_types::value::Kind::StructValue(s)),
        };
    }
    let mut top = prost_types::Struct::default();
    top.fields.insert("nested".into(), v);
    // Run on a thread with a small stack, as a Tokio worker would have.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let map = struct_to_config(Some(top));
            let _ = config_to_struct(map);
        })
        .unwrap();
    handle.join().expect("conversion panicked or overflowed");
}

#[test]
fn nested_config_struct_beyond_the_wire_limit_converts() {
    // The protobuf decoder stops at about 33 levels; 100 is well past it.
    nested(100);
}

// Finding: 2,000 levels built in memory (not reachable from the wire, whose decoder stops
// at ~33 levels) overflow a 2 MiB stack, in the conversion or in dropping the nested
// values. Run with `--ignored` to reproduce.
#[test]
#[ignore = "stack overflow at 2,000 levels (not reachable over gRPC); see the reliability report"]
fn nested_config_struct_2000_levels() {
    nested(2000);
}

#[test]
fn giant_config_struct_is_linear() {
    let mut s = prost_types::Struct::default();
    for i in 0..200_000 {
        s.fields.insert(
            format!("k{i}"),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(f64::from(i))),
            },
        );
    }
    let map = bounded("200k-key config", Duration::from_secs(20), || {
        struct_to_config(Some(s))
    });
    assert_eq!(map.len(), 200_000);
    assert_eq!(map["k7"], serde_json::json!(7));
}

#[test]
fn non_finite_numbers_do_not_panic() {
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308, -0.0] {
        let mut s = prost_types::Struct::default();
        s.fields.insert(
            "n".into(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(n)),
            },
        );
        let map = struct_to_config(Some(s));
        let _ = config_to_struct(map);
    }
}

#[test]
fn oversized_and_nested_templates_are_refused_quickly() {
    let huge = "{{.RoleName}}".repeat(100_000);
    assert!(
        bounded("1.3 MB template", Duration::from_secs(5), || {
            Template::parse(&huge)
        })
        .is_err()
    );
    let deep = format!(
        "{{{{{}.RoleName{}}}}}",
        "(".repeat(50_000),
        ")".repeat(50_000)
    );
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Template::parse(&deep).is_err())
        .unwrap();
    assert!(handle.join().expect("nested template overflowed"));
    for bad in [
        "{{",
        "{{ end }}",
        "{{ if }}",
        "{{ .A.B.C.D",
        "{{ printf \"%",
        "\u{0}{{ .X }}",
    ] {
        let _ = Template::parse(bad);
    }
    // A template that renders a large output is bounded by its own size.
    let t = Template::parse(r#"{{ printf "%s" .RoleName | truncate 10 }}"#).unwrap();
    let meta = username_metadata("d", "r".repeat(1 << 20));
    assert_eq!(t.render(&meta).unwrap().len(), 10);
}

#[test]
fn pathological_statements_split_in_bounded_time() {
    let many = ";".repeat(1 << 20);
    bounded("1M semicolons", Duration::from_secs(10), || {
        statements::split(&many)
    });
    let dollars = "$$".repeat(200_000) + "x";
    bounded("unbalanced $$", Duration::from_secs(10), || {
        statements::split_postgres(&dollars)
    });
    let quotes = "'".repeat(300_001);
    bounded("unbalanced quotes", Duration::from_secs(10), || {
        statements::split_postgres(&quotes)
    });
    let braces = "{{name}}".repeat(200_000);
    bounded("many placeholders", Duration::from_secs(10), || {
        statements::Placeholders::new()
            .name("u")
            .password("p")
            .apply(&braces)
    });
    let _ = statements::quote_identifier(&"\"".repeat(100_000));
}
