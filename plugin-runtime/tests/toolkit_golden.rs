//! Parity with the Go SDK: renders the corpus in `conformance/testdata/golden/corpus.json`
//! and compares with `expected.json`, which the Go test in `conformance/golden` produces
//! with the real SDK helpers (`GOLDEN_UPDATE=1 go test ./golden/` rewrites it).

use std::path::PathBuf;

use base64::Engine as _;
use dbplugin::time::OffsetDateTime;
use dbplugin::time::macros::datetime;
use dbplugin::toolkit::connection::{self, ConnectionConfig, UrlEscaping};
use dbplugin::toolkit::credentials::{self, CaseOp, UsernameGenerator};
use dbplugin::toolkit::statements;
use dbplugin::toolkit::template::{Environment, Template, username_metadata};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/testdata/golden")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A Go string from the JSON: a string, or `{"base64": …}` for invalid UTF-8.
fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Object(m) => base64::engine::general_purpose::STANDARD
            .decode(m["base64"].as_str().unwrap())
            .unwrap(),
        other => panic!("not a string: {other}"),
    }
}

/// Go's rune view of bytes: each invalid byte is U+FFFD.
fn lossy(b: &[u8]) -> String {
    b.utf8_chunks()
        .map(|c| c.valid().to_owned() + &"\u{FFFD}".repeat(c.invalid().len()))
        .collect()
}

const RANDOM: char = '\u{1}';
const HEX: char = '\u{3}';
const NOW: OffsetDateTime = datetime!(2026-12-04 21:05:07.123 UTC);

/// Marks random characters so they can be matched against any alphanumeric in Go's output.
struct Marking;

impl Environment for Marking {
    fn random(&self, n: usize) -> String {
        RANDOM.to_string().repeat(n)
    }
    fn now(&self) -> OffsetDateTime {
        NOW
    }
    fn uuid(&self) -> String {
        let h = |n: usize| HEX.to_string().repeat(n);
        format!("{}-{}-{}-{}-{}", h(8), h(4), h(4), h(4), h(12))
    }
}

/// Same length; equal except where Rust has a random marker (Go: alphanumeric) or both
/// have a digit (clock values).
fn shape_matches(r: &[u8], g: &[u8]) -> bool {
    r.len() == g.len()
        && r.iter().zip(g).all(|(&a, &b)| match a {
            1 => b.is_ascii_alphanumeric(),
            3 => b.is_ascii_hexdigit(),
            _ => a == b || a.is_ascii_digit() && b.is_ascii_digit(),
        })
}

struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
}

fn pairs<'a>(
    corpus: &'a Value,
    expected: &'a Value,
    c: &str,
    e: &str,
) -> Vec<(&'a Value, &'a Value)> {
    let a = corpus[c].as_array().unwrap();
    let b = expected[e].as_array().unwrap();
    assert_eq!(
        a.len(),
        b.len(),
        "{c}: corpus and expectations differ in length"
    );
    a.iter().zip(b).collect()
}

#[test]
fn golden_parity_with_go_sdk() {
    let corpus = load("corpus.json");
    let expected = load("expected.json");
    let mut f = Failures(Vec::new());
    let mut counted = 0;

    for (i, (case, want)) in pairs(&corpus, &expected, "templates", "templates")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let raw = case["template"].as_str().unwrap();
        let meta = username_metadata(
            case["display_name"].as_str().unwrap(),
            case["role_name"].as_str().unwrap(),
        );
        let random = case["random"].as_bool().unwrap_or(false);
        let got = Template::parse(raw).and_then(|t| t.render_bytes_with(&meta, &Marking));
        let name = case["name"].as_str().unwrap();
        match (&got, want.get("output"), want.get("error")) {
            (Ok(out), Some(go), _) => {
                let go = bytes(go);
                let ok = if random {
                    shape_matches(out, &go)
                } else {
                    *out == go
                };
                f.check(ok, || {
                    format!(
                        "templates[{i}] {name}: rust {:?}, go {:?}",
                        out.escape_ascii().to_string(),
                        go.escape_ascii().to_string()
                    )
                });
            }
            (Err(e), _, Some(go)) => f.check(e.to_string() == go.as_str().unwrap(), || {
                format!(
                    "templates[{i}] {name}: rust error {:?}, go error {go}",
                    e.to_string()
                )
            }),
            (got, _, _) => f.check(false, || {
                format!("templates[{i}] {name}: rust {got:?}, go {want}")
            }),
        }
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "queries", "queries")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let data: Vec<(String, String)> = case["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let kv: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let got = statements::substitute(case["template"].as_str().unwrap(), &kv);
        let outs: Vec<String> = want["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| lossy(&bytes(v)))
            .collect();
        f.check(outs.contains(&got), || {
            format!("queries[{i}]: rust {got:?}, go {outs:?}")
        });
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "splits", "splits")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let input = case["input"].as_str().unwrap();
        let got =
            statements::parse_arbitrary_string_slice_bytes(input, case["sep"].as_str().unwrap());
        let go: Vec<Vec<u8>> = want
            .as_array()
            .map(|a| a.iter().map(bytes).collect())
            .unwrap_or_default();
        f.check(got == go, || {
            format!("splits[{i}] {input:?}: rust {got:?}, go {go:?}")
        });
        let go: Vec<String> = go.iter().map(|b| lossy(b)).collect();
        if case["sep"] == ";" {
            let want_split: Vec<String> = go
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            let s = statements::split(input);
            f.check(s == want_split, || {
                format!("split[{i}]: rust {s:?}, want {want_split:?}")
            });
        }
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "quote_identifier", "quote_identifier")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let got = statements::quote_identifier(case.as_str().unwrap());
        f.check(got == want.as_str().unwrap(), || {
            format!("quote[{i}]: rust {got:?}, go {want}")
        });
    }

    for (i, (case, want)) in pairs(
        &corpus,
        &expected,
        "credsutil_usernames",
        "credsutil_usernames",
    )
    .into_iter()
    .enumerate()
    {
        counted += 1;
        let case_op = match case["case"].as_i64().unwrap() {
            1 => CaseOp::Uppercase,
            2 => CaseOp::Lowercase,
            _ => CaseOp::Keep,
        };
        let got = UsernameGenerator::new()
            .display_name(
                case["display_name"].as_str().unwrap(),
                case["display_len"].as_i64().unwrap(),
            )
            .role_name(
                case["role_name"].as_str().unwrap(),
                case["role_len"].as_i64().unwrap(),
            )
            .separator(case["separator"].as_str().unwrap())
            .max_length(case["max_len"].as_i64().unwrap())
            .case(case_op)
            .generate_bytes_from(&RANDOM.to_string().repeat(20), NOW.unix_timestamp());
        let go = bytes(want);
        f.check(shape_matches(&got, &go), || {
            format!(
                "credsutil[{i}]: rust {:?}, go {:?}",
                got.escape_ascii().to_string(),
                go.escape_ascii().to_string()
            )
        });
    }

    for (i, (case, want)) in pairs(
        &corpus,
        &expected,
        "random_alphanumeric",
        "random_alphanumeric",
    )
    .into_iter()
    .enumerate()
    {
        counted += 1;
        let len = case["length"].as_u64().unwrap() as usize;
        let prepend = case["prepend"].as_bool().unwrap();
        let prefix = if prepend { "A1a-" } else { "" };
        match (
            credentials::random_alphanumeric(len, prepend),
            want.get("output"),
            want.get("error"),
        ) {
            (Ok(s), Some(go), _) => {
                let go = lossy(&bytes(go));
                let ok = s.len() == go.len()
                    && s.starts_with(prefix)
                    && go.starts_with(prefix)
                    && s[prefix.len()..]
                        .chars()
                        .all(|c| credentials::BASE62_ALPHABET.contains(c));
                f.check(ok, || format!("alnum[{i}]: rust {s:?}, go {go:?}"));
            }
            (Err(e), _, Some(go)) => f.check(e.to_string() == go.as_str().unwrap(), || {
                format!("alnum[{i}]: rust {e}, go {go}")
            }),
            (got, _, _) => f.check(false, || format!("alnum[{i}]: rust {got:?}, go {want}")),
        }
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "connections", "connections")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let escaping = if case["type"] == "mysql" {
            UrlEscaping::UsernameOnly
        } else {
            UrlEscaping::Both
        };
        let got = ConnectionConfig::from_config(case["config"].as_object().unwrap())
            .and_then(|c| c.render_url(escaping).map(|u| (c, u)));
        match (got, want.get("error")) {
            (Ok((c, url)), None) => {
                let ok = url.expose() == want["url"].as_str().unwrap()
                    && c.max_open_connections == want["max_open"].as_i64().unwrap()
                    && c.max_idle_connections == want["max_idle"].as_i64().unwrap();
                f.check(ok, || {
                    format!(
                        "connections[{i}]: rust ({:?}, {}, {}), go {want}",
                        url.expose(),
                        c.max_open_connections,
                        c.max_idle_connections
                    )
                });
            }
            (Err(e), Some(go)) => {
                let go = go.as_str().unwrap();
                // Decoding errors are worded by mapstructure/parseutil: only their presence
                // is compared; connutil's own errors must match exactly.
                let exact = !go.starts_with("1 error(s) decoding")
                    && !go.starts_with("invalid max_connection_lifetime");
                f.check(!exact || e.to_string() == go, || {
                    format!("connections[{i}]: rust error {e}, go error {go}")
                });
            }
            (got, _) => f.check(false, || {
                format!(
                    "connections[{i}]: rust {:?}, go {want}",
                    got.map(|(_, u)| u.expose().to_owned())
                )
            }),
        }
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "durations", "durations")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let got = connection::parse_duration_second(Some(case));
        let ok = match (&got, want.get("error")) {
            (Ok(d), None) => d.whole_nanoseconds() == i128::from(want["nanos"].as_i64().unwrap()),
            (Err(_), Some(_)) => true,
            _ => false,
        };
        f.check(ok, || {
            format!("durations[{i}] {case}: rust {got:?}, go {want}")
        });
    }

    let times = [
        datetime!(2026-12-04 21:05:07.123456789 UTC),
        datetime!(2024-01-02 03:04:05 -07:30),
        datetime!(1999-07-09 12:00:00.5 +05:45),
    ];
    for (i, (layout, want)) in pairs(&corpus, &expected, "time_layouts", "time_formats")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        for (j, t) in times.iter().enumerate() {
            let got = statements::format_time(t, layout.as_str().unwrap());
            let go = want[j].as_str().unwrap();
            f.check(got == go, || {
                format!("time[{i}][{j}] {layout}: rust {got:?}, go {go:?}")
            });
        }
    }

    for (i, (case, want)) in pairs(&corpus, &expected, "path_escape", "path_escape")
        .into_iter()
        .enumerate()
    {
        counted += 1;
        let got = connection::path_escape(case.as_str().unwrap());
        f.check(got == want.as_str().unwrap(), || {
            format!("path_escape[{i}]: rust {got:?}, go {want}")
        });
    }

    assert!(counted >= 150, "corpus too small: {counted}");
    assert!(
        f.0.is_empty(),
        "{} parity failures of {counted} cases:\n{}",
        f.0.len(),
        f.0.join("\n")
    );
    eprintln!("{counted} corpus cases identical to the Go SDK's output");
}
