//! Property tests: the template parser, the statement splitter, the URL builder and the
//! sanitizer never panic or hang on arbitrary input.

use dbplugin::toolkit::connection::{self, UrlEscaping};
use dbplugin::toolkit::sanitize::Sanitizer;
use dbplugin::toolkit::statements;
use dbplugin::toolkit::template::{Template, username_metadata};
use proptest::prelude::*;

/// Pieces that make template-like input more likely to reach deep parser states.
fn template_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{- ".to_string()),
        Just(" -}}".to_string()),
        Just("|".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(" ".to_string()),
        Just(".DisplayName".to_string()),
        Just(".RoleName".to_string()),
        Just("$x := ".to_string()),
        Just("$x".to_string()),
        Just("\"s\"".to_string()),
        Just("`raw`".to_string()),
        Just("'c'".to_string()),
        Just("-12".to_string()),
        Just("1e3".to_string()),
        Just("0x1F".to_string()),
        Just("truncate 3".to_string()),
        Just("truncate_sha256 9".to_string()),
        Just("printf \"%s-%d %q %v %5.2f\"".to_string()),
        Just("replace \"a\" \"b\"".to_string()),
        Just("random 4".to_string()),
        Just("uppercase".to_string()),
        Just("glob \"a*\"".to_string()),
        Just("if".to_string()),
        Just("else".to_string()),
        Just("end".to_string()),
        Just("with".to_string()),
        Just("range 3".to_string()),
        Just("break".to_string()),
        Just("/* c */".to_string()),
        Just("eq".to_string()),
        Just("index".to_string()),
        Just("slice".to_string()),
        Just("define \"a\"".to_string()),
        Just("template \"a\" .".to_string()),
        Just("block \"b\" .RoleName".to_string()),
        Just("\"\\xff\"".to_string()),
        "[a-z日é]{0,3}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn template_never_panics_on_soup(src in template_soup(), dn in "\\PC{0,12}", rn in "\\PC{0,12}") {
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&username_metadata(dn, rn));
        }
    }

    #[test]
    fn template_never_panics_on_bytes(src in "\\PC{0,64}") {
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&username_metadata("d", "r"));
        }
    }

    #[test]
    fn splitter_never_panics(input in "\\PC{0,80}", sep in "[;,]{0,2}") {
        let _ = statements::parse_arbitrary_string_slice(&input, &sep);
        let pieces = statements::parse_arbitrary_string_slice(&input, ";");
        let split = statements::split(&input);
        prop_assert!(split.iter().all(|s| !s.is_empty() && s.trim() == s));
        prop_assert!(split.len() <= pieces.len());
        let _ = statements::split_postgres(&input);
        let _ = statements::substitute(&input, &[("name", "x"), ("password", "{{name}}")]);
    }

    #[test]
    fn splitter_handles_base64_and_json(items in prop::collection::vec("[^\"\\\\]{0,10}", 0..5)) {
        use base64::Engine as _;
        let json = serde_json::to_string(&items).unwrap();
        prop_assert_eq!(statements::parse_arbitrary_string_slice(&json, ";"), items.clone());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&json);
        prop_assert_eq!(statements::parse_arbitrary_string_slice(&b64, ";"), items);
    }

    #[test]
    fn url_builder_never_panics(url in "\\PC{0,40}", user in "\\PC{0,16}", pass in "\\PC{0,16}",
                                disable in any::<bool>(), managed in any::<bool>(), mysql in any::<bool>()) {
        let esc = if mysql { UrlEscaping::UsernameOnly } else { UrlEscaping::Both };
        let built = connection::render_connection_url(&url, &user, &pass, disable, managed, esc);
        if let Ok(u) = built
            && !disable && !managed && !user.is_empty() && url.contains("{{username}}")
        {
            prop_assert!(u.expose().contains(&connection::path_escape(&user)));
        }
        let _ = connection::postgres_url_settings(&url);
    }

    #[test]
    fn weak_decoding_never_panics(v in prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ]) {
        let mut m = serde_json::Map::new();
        m.insert("connection_url".into(), "x".into());
        m.insert("max_open_connections".into(), v.clone());
        m.insert("max_connection_lifetime".into(), v.clone());
        m.insert("disable_escaping".into(), v);
        let _ = connection::ConnectionConfig::from_config(&m);
    }

    #[test]
    fn sanitizer_removes_every_secret(text in "\\PC{0,40}", secret in "\\PC{1,8}") {
        let s = Sanitizer::new().password(secret.as_str());
        let msg = format!("{text}{secret}{text}");
        prop_assert!(!s.sanitize(&msg).contains(secret.as_str()) || "[password]".contains(secret.as_str()));
    }
}

#[test]
fn pathological_templates_are_bounded() {
    let deep = format!("{{{{ {}", "(".repeat(5000));
    assert!(Template::parse(&deep).is_err());
    let nested_ifs = "{{ if 1 }}".repeat(5000);
    assert!(Template::parse(&nested_ifs).is_err());
    let t = Template::parse("{{ range 2000000000 }}{{ end }}").unwrap();
    assert!(t.render(&username_metadata("", "")).is_err());
    let t = Template::parse("{{ printf \"%999999999s\" \"x\" }}").unwrap();
    assert!(t.render(&username_metadata("", "")).unwrap().len() < 100);
    assert!(Template::parse(&"x".repeat(100_000)).is_err());
    let nested_blocks = "{{ block \"b\" . }}".repeat(5000);
    assert!(Template::parse(&nested_blocks).is_err());
    let nested_define = "{{ define \"a\" }}{{ define \"b\" }}{{ end }}{{ end }}";
    assert!(Template::parse(nested_define).is_err());
}
