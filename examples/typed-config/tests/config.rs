//! The typed config through the real host protocol.

use dbplugin::testkit::Host;
use dbplugin::testkit::grpc::Code;

const BIN: &str = env!("CARGO_BIN_EXE_typed-config-plugin");
const SECRET: &str = "hunter2-do-not-echo";

#[tokio::test]
async fn typed_config_decodes_and_refuses_wrong_types_without_echoing_values() {
    let plugin = Host::new(BIN).start().await.unwrap();
    let db = plugin.database(Some("conn-1"));
    assert_eq!(db.type_name().await.unwrap(), "typed-config");
    assert_eq!(
        plugin.version().await.unwrap(),
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );

    // A good config, numbers as strings (as the Vault CLI sends them) included.
    let stored = db
        .initialize(
            serde_json::json!({
                "connection_url": "typed://db", "max_users": "1",
                "username_prefix": "app", "password": SECRET
            }),
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        stored["password"], SECRET,
        "the config is stored as received"
    );
    assert_eq!(
        stored["supported_credential_types"],
        serde_json::json!(["password"])
    );
    let exp = dbplugin::time::OffsetDateTime::now_utc();
    let user = db
        .new_user_with_password("ro", "pw", &[], exp)
        .await
        .unwrap();
    assert_eq!(user, "app-ro-0");
    let err = db
        .new_user_with_password("ro", "pw", &[], exp)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "unable to create new user: `max_users` (1) reached"
    );

    // A wrong-typed key: refused at Initialize, naming the key, not echoing the value.
    for (key, value, expected) in [
        (
            "max_users",
            serde_json::json!(SECRET),
            "a non-negative integer, got a string",
        ),
        (
            "connection_url",
            serde_json::json!({"inner": SECRET}),
            "a string, got an object",
        ),
        (
            "username_prefix",
            serde_json::json!([SECRET]),
            "a string, got a list",
        ),
    ] {
        let mut config = serde_json::json!({"connection_url": "typed://db"});
        config[key] = value;
        let err = db.initialize(config, true).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(
            err.message(),
            format!("failed to initialize: `{key}`: expected {expected}")
        );
        assert!(!err.message().contains(SECRET));
    }

    // A missing required key.
    let err = db
        .initialize(serde_json::json!({"max_users": 3}), false)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "failed to initialize: `connection_url`: required key is missing"
    );

    let lines = plugin.stderr_lines();
    assert!(
        lines.iter().all(|l| !l.contains(SECRET)),
        "a secret reached the log"
    );
    assert!(plugin.shutdown().await.unwrap().success());
}
