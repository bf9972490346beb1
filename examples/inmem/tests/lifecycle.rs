//! The in-memory plugin driven by the runtime's test host, launched as Vault launches it.

use std::time::{Duration, Instant};

use dbplugin::testkit::Host;
use dbplugin::time::OffsetDateTime;

const BIN: &str = env!("CARGO_BIN_EXE_inmem-plugin");

fn snapshot(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn full_lifecycle_over_automtls() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("users.json");
    let plugin = Host::new(BIN).start().await.unwrap();
    let hs = plugin.handshake().clone();
    assert_eq!((hs.core_version, hs.app_version), (1, 6));
    assert_eq!(
        (hs.network.as_str(), hs.protocol.as_str()),
        ("unix", "grpc")
    );
    assert!(hs.server_cert.is_some());
    assert!(plugin.multiplexing_supported().await.unwrap());

    let db = plugin.database(Some("id-1"));
    assert_eq!(db.type_name().await.unwrap(), "inmem");
    let config = db
        .initialize(
            serde_json::json!({"connection_url": "inmem://a", "snapshot_path": snap, "max_open_connections": 4}),
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        config["supported_credential_types"],
        serde_json::json!(["password", "rsa_private_key", "client_certificate"])
    );
    assert!(config["max_open_connections"].is_i64());

    let exp = OffsetDateTime::now_utc() + dbplugin::time::Duration::hours(1);
    let user = db
        .new_user_with_password(
            "reader",
            "p4ss-one",
            &["CREATE ROLE {{name}} PASSWORD '{{password}}'"],
            exp,
        )
        .await
        .unwrap();
    let snapshot1 = snapshot(&snap);
    let stored = &snapshot1["users"][&user];
    assert_eq!(stored["credential_type"], "password");
    assert_eq!(
        stored["statements"][0],
        format!("CREATE ROLE {user} PASSWORD '[password]'")
    );
    db.update_password(&user, "p4ss-two").await.unwrap();
    assert_ne!(
        snapshot(&snap)["users"][&user]["password_sha256"],
        stored["password_sha256"]
    );
    db.update_expiration(&user, exp + dbplugin::time::Duration::hours(1))
        .await
        .unwrap();
    db.delete_user(&user).await.unwrap();
    db.delete_user(&user).await.unwrap();
    assert!(snapshot(&snap)["users"].as_object().unwrap().is_empty());

    let err = db.update_password("", "x").await.unwrap_err();
    assert_eq!(err.code(), tonic_code::INVALID_ARGUMENT);
    let err = db
        .new_user_with_password("r", "p", &["ERROR no such table"], exp)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic_code::INTERNAL);
    assert_eq!(
        err.message(),
        "unable to create new user: statement failed: ERROR no such table"
    );
    db.close().await.unwrap();

    let lines = plugin.stderr_lines();
    assert!(plugin.stdout_after_handshake().is_empty());
    let socket = hs.address.clone();
    let started = Instant::now();
    let status = plugin.shutdown().await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        !std::path::Path::new(&socket).exists(),
        "socket file left behind"
    );
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("every stderr line is JSON");
        assert!(
            v["@level"].is_string() && v["@message"].is_string() && v["@timestamp"].is_string()
        );
        assert!(
            !line.contains("p4ss-"),
            "a password reached the log: {line}"
        );
    }
}

#[tokio::test]
async fn tcp_listener_and_version_probe_without_id() {
    let plugin = Host::new(BIN)
        .env("DBPLUGIN_NETWORK", "tcp")
        .start()
        .await
        .unwrap();
    assert_eq!(plugin.handshake().network, "tcp");
    assert!(plugin.handshake().address.starts_with("127.0.0.1:"));
    assert_eq!(
        plugin.version().await.unwrap(),
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        !plugin
            .stderr_lines()
            .iter()
            .any(|l| l.contains("database instance created")),
        "the version probe created an instance"
    );
    assert!(plugin.shutdown().await.unwrap().success());
}

#[tokio::test]
async fn ids_are_isolated() {
    let plugin = Host::new(BIN).start().await.unwrap();
    let a = plugin.database(Some("a"));
    let b = plugin.database(Some("b"));
    a.initialize(serde_json::json!({}), false).await.unwrap();
    b.initialize(serde_json::json!({}), false).await.unwrap();
    let exp = OffsetDateTime::now_utc();
    let user = a.new_user_with_password("r", "pw", &[], exp).await.unwrap();
    let err = b.update_password(&user, "pw2").await.unwrap_err();
    assert!(err.message().contains("does not exist"), "{err:?}");
    a.close().await.unwrap();
    let err = a.update_password(&user, "pw2").await.unwrap_err();
    assert_eq!(err.message(), "no database instance found");
    b.new_user_with_password("r", "pw", &[], exp).await.unwrap();
    plugin.kill().await.unwrap();
}

#[tokio::test]
async fn no_cookie_prints_the_go_plugin_message() {
    let out = std::process::Command::new(BIN)
        .env_remove("VAULT_DATABASE_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "This binary is a plugin. These are not meant to be executed directly.\n\
         Please execute the program that consumes these plugins, which will\n\
         load any plugins automatically\n"
    );
}

#[tokio::test]
async fn v4_versions_get_the_lowest_and_no_certificate_without_client_cert() {
    let plugin = Host::new(BIN)
        .protocol_versions("3,4")
        .auto_mtls(false)
        .start()
        .await
        .unwrap();
    assert_eq!(plugin.handshake().app_version, 5);
    assert!(plugin.handshake().line.ends_with("|grpc|"));
    plugin.kill().await.unwrap();
}

/// gRPC status codes by number, to keep tonic out of this example's dependencies.
mod tonic_code {
    pub(crate) const INVALID_ARGUMENT: dbplugin::testkit::grpc::Code =
        dbplugin::testkit::grpc::Code::InvalidArgument;
    pub(crate) const INTERNAL: dbplugin::testkit::grpc::Code =
        dbplugin::testkit::grpc::Code::Internal;
}
