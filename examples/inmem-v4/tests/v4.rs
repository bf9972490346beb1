//! The v4 example through the runtime's test host: plaintext in metadata mode, AutoMTLS when
//! the host enables it, and a clear failure when the unwrap token is missing.

use dbplugin::testkit::Host;
use dbplugin::testkit::proto::dbplugin::v4 as pb;

const BIN: &str = env!("CARGO_BIN_EXE_inmem-v4-plugin");

async fn exercise(plugin: &dbplugin::testkit::PluginProcess) {
    let mut db = pb::database_client::DatabaseClient::new(plugin.channel());
    assert_eq!(
        db.r#type(pb::Empty {}).await.unwrap().into_inner().r#type,
        "inmem-v4"
    );
    let config = serde_json::json!({"username": "root", "password": "r00t-pw"});
    let saved = db
        .init(pb::InitRequest {
            config: serde_json::to_vec(&config).unwrap(),
            verify_connection: true,
        })
        .await
        .unwrap()
        .into_inner();
    let saved: serde_json::Value = serde_json::from_slice(&saved.config).unwrap();
    assert_eq!(saved, config);
    let password = db
        .generate_credentials(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .password;
    assert!(password.starts_with("A1a-") && password.len() == 20);
    let created = db
        .create_user(pb::CreateUserRequest {
            statements: Some(pb::Statements {
                creation: vec!["CREATE {{name}}".into()],
                ..Default::default()
            }),
            username_config: Some(pb::UsernameConfig {
                display_name: "token".into(),
                role_name: "reader".into(),
            }),
            expiration: Some(prost_types_now()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.username.starts_with("v-token-reader-"));
    let rotated = db
        .rotate_root_credentials(pb::RotateRootCredentialsRequest { statements: vec![] })
        .await
        .unwrap()
        .into_inner();
    let rotated: serde_json::Value = serde_json::from_slice(&rotated.config).unwrap();
    assert_ne!(rotated["password"], "r00t-pw");
    for _ in 0..2 {
        db.revoke_user(pb::RevokeUserRequest {
            statements: None,
            username: created.username.clone(),
        })
        .await
        .unwrap();
    }
    let err = db
        .renew_user(pb::RenewUserRequest {
            statements: None,
            username: created.username.clone(),
            expiration: Some(prost_types_now()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), dbplugin::testkit::grpc::Code::Unknown);
    assert!(err.message().contains("does not exist"));
    db.close(pb::Empty {}).await.unwrap();
}

fn prost_types_now() -> dbplugin::testkit::grpc::Timestamp {
    dbplugin::testkit::grpc::Timestamp {
        seconds: dbplugin::time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        nanos: 0,
    }
}

#[tokio::test]
async fn metadata_mode_is_plaintext_without_a_certificate() {
    let plugin = Host::new(BIN)
        .protocol_versions("3,4")
        .auto_mtls(false)
        .env("VAULT_PLUGIN_METADATA_MODE", "true")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "false")
        .start()
        .await
        .unwrap();
    assert_eq!(plugin.handshake().app_version, 4);
    assert!(plugin.handshake().line.ends_with("|grpc|"));
    exercise(&plugin).await;
    assert!(!plugin.multiplexing_supported().await.unwrap());
    assert!(plugin.shutdown().await.unwrap().success());
}

#[tokio::test]
async fn automtls_when_the_host_enables_it() {
    let plugin = Host::new(BIN)
        .protocol_versions("4,3")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
        .start()
        .await
        .unwrap();
    assert_eq!(plugin.handshake().app_version, 4);
    assert!(plugin.handshake().server_cert.is_some());
    exercise(&plugin).await;
    assert!(plugin.shutdown().await.unwrap().success());
}

#[tokio::test]
async fn missing_unwrap_token_fails_with_one_clear_line() {
    let out = std::process::Command::new(BIN)
        .env(
            "VAULT_DATABASE_PLUGIN",
            "926a0820-aea2-be28-51d6-83cdf00e8edb",
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "3,4")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "false")
        .env("VAULT_PLUGIN_METADATA_MODE", "false")
        .env_remove("VAULT_UNWRAP_TOKEN")
        .env_remove("BAO_UNWRAP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["@level"], "error");
    assert!(
        line["@message"]
            .as_str()
            .unwrap()
            .contains("VAULT_UNWRAP_TOKEN")
    );
}

#[tokio::test]
async fn malformed_token_never_reaches_the_output() {
    let token = "not-a-jwt-but-a-secret-token-value";
    let out = std::process::Command::new(BIN)
        .env(
            "VAULT_DATABASE_PLUGIN",
            "926a0820-aea2-be28-51d6-83cdf00e8edb",
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "3,4")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "false")
        .env("VAULT_UNWRAP_TOKEN", token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(token));
    assert!(stderr.contains("error parsing wrapping token"), "{stderr}");
}
