//! Micro-benchmarks of the toolkit helpers that mirror the Vault SDK's, on the same inputs
//! as `conformance/bench/micro_test.go` (the SDK's `helper/template` and
//! `dbutil.QueryHelper`); `scripts/bench` puts both in one table.
//!
//! ```sh
//! cargo bench -p dbplugin --bench toolkit
//! ```
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dbplugin::UsernameMetadata;
use dbplugin::toolkit::statements::Placeholders;
use dbplugin::toolkit::template::{POSTGRES_DEFAULT, Template};

const STATEMENTS: [&str; 2] = [
    r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#,
    r#"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{username}}";"#,
];

fn toolkit(c: &mut Criterion) {
    let mut meta = UsernameMetadata::default();
    meta.display_name = "token-benchmark".into();
    meta.role_name = "readonly-role".into();
    c.bench_function("template_parse", |b| {
        b.iter(|| Template::parse(black_box(POSTGRES_DEFAULT)).unwrap())
    });
    let tpl = Template::parse(POSTGRES_DEFAULT).unwrap();
    c.bench_function("template_render", |b| {
        b.iter(|| tpl.render(black_box(&meta)).unwrap())
    });
    // What a SQL plugin does per NewUser: the placeholder values, then every statement.
    let expiration = time::macros::datetime!(2026-12-04 10:00:00 UTC);
    c.bench_function("statements_apply", |b| {
        b.iter(|| {
            let values = Placeholders::new()
                .name(black_box(
                    "v-token-be-readonly-AbCdEfGhIjKlMnOpQrSt-1764842400",
                ))
                .password(black_box("A1a-Bench-Password-0123456789"))
                .expiration(black_box(expiration));
            for s in STATEMENTS {
                black_box(values.apply(black_box(s)));
            }
        })
    });
}

criterion_group!(benches, toolkit);
criterion_main!(benches);
