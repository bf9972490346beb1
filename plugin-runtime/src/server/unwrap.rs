//! The TLS-unwrap bootstrap of v4 plugins: fetch the server certificate and key the host
//! wrapped, by unwrapping the token in `BAO_`/`VAULT_UNWRAP_TOKEN` through the host's API.
//!
//! The token is a JWT whose payload names the host's API address (`addr`); the plugin
//! `PUT`s `<addr>/v1/sys/wrapping/unwrap` with the token as `X-Vault-Token`, and the answer's
//! `data.ServerCert` / `data.ServerKey` (base64 DER; a SEC1 P-521 key) become the TLS identity
//! of the gRPC server, which then accepts exactly that certificate from the host.
//!
//! No error message ever contains the token.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;

use super::env::read_bao_or_vault;

/// TLS settings for the unwrap call to the host's API, as the Go SDK's `api.TLSConfig`.
///
/// Sources, later ones winning field by field: the environment (`BAO_*` read before
/// `VAULT_*`: `CACERT`, `CACERT_BYTES`, `CAPATH`, `CLIENT_CERT`, `CLIENT_KEY`,
/// `SKIP_VERIFY`, `TLS_SERVER_NAME`), this value as given to the server, and the plugin's
/// arguments (`-ca-cert`, `-ca-path`, `-client-cert`, `-client-key`, `-tls-skip-verify`,
/// `-tls-server-name`: what operators pass with `args=` at registration). Without any CA the
/// system's trust store is used.
///
/// ```
/// use dbplugin::v4::UnwrapTlsConfig;
///
/// let tls = UnwrapTlsConfig::default()
///     .ca_cert("/etc/vault/ca.pem")
///     .server_name("vault.internal");
/// # let _ = tls;
/// ```
#[derive(Debug, Clone, Default)]
pub struct UnwrapTlsConfig {
    ca_cert: Option<PathBuf>,
    ca_cert_pem: Option<Vec<u8>>,
    ca_path: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    server_name: Option<String>,
    insecure: Option<bool>,
}

impl UnwrapTlsConfig {
    /// A PEM file of CA certificates to verify the host's API with.
    #[must_use]
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// PEM CA certificates, in memory.
    #[must_use]
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert_pem = Some(pem.into());
        self
    }

    /// A directory of PEM CA files.
    #[must_use]
    pub fn ca_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(dir.into());
        self
    }

    /// A PEM client certificate for TLS client authentication to the host's API (with
    /// [`UnwrapTlsConfig::client_key`]).
    #[must_use]
    pub fn client_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(path.into());
        self
    }

    /// The PEM private key of the client certificate.
    #[must_use]
    pub fn client_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_key = Some(path.into());
        self
    }

    /// The name to verify the API's certificate against (and to send as SNI).
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Skip verifying the API's certificate. Insecure; for tests only.
    #[must_use]
    pub fn insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure = Some(skip);
        self
    }

    fn overlay(self, top: UnwrapTlsConfig) -> UnwrapTlsConfig {
        UnwrapTlsConfig {
            ca_cert: top.ca_cert.or(self.ca_cert),
            ca_cert_pem: top.ca_cert_pem.or(self.ca_cert_pem),
            ca_path: top.ca_path.or(self.ca_path),
            client_cert: top.client_cert.or(self.client_cert),
            client_key: top.client_key.or(self.client_key),
            server_name: top.server_name.or(self.server_name),
            insecure: top.insecure.or(self.insecure),
        }
    }

    fn from_env(get: &impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |s: &str| read_bao_or_vault(get, s).filter(|v| !v.is_empty());
        UnwrapTlsConfig {
            ca_cert: var("CACERT").map(PathBuf::from),
            ca_cert_pem: var("CACERT_BYTES").map(String::into_bytes),
            ca_path: var("CAPATH").map(PathBuf::from),
            client_cert: var("CLIENT_CERT").map(PathBuf::from),
            client_key: var("CLIENT_KEY").map(PathBuf::from),
            server_name: var("TLS_SERVER_NAME"),
            insecure: var("SKIP_VERIFY").map(|v| parse_bool(&v)),
        }
    }

    /// Go's `flag` syntax: `-name value`, `-name=value`, `--name`, booleans bare or `=true`.
    fn from_args(args: &[String]) -> Self {
        let mut out = UnwrapTlsConfig::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].trim_start_matches('-');
            if arg.len() == args[i].len() {
                i += 1;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg, None),
            };
            let mut value = || {
                inline.clone().or_else(|| {
                    i += 1;
                    args.get(i).cloned()
                })
            };
            match name {
                "ca-cert" => out.ca_cert = value().map(PathBuf::from),
                "ca-path" => out.ca_path = value().map(PathBuf::from),
                "client-cert" => out.client_cert = value().map(PathBuf::from),
                "client-key" => out.client_key = value().map(PathBuf::from),
                "tls-server-name" => out.server_name = value(),
                "tls-skip-verify" => {
                    out.insecure = Some(inline.as_deref().is_none_or(parse_bool));
                }
                _ => {}
            }
            i += 1;
        }
        out
    }

    /// Environment < this value < arguments.
    pub(crate) fn with_env_and_args(
        self,
        get: &impl Fn(&str) -> Option<OsString>,
        args: &[String],
    ) -> Self {
        Self::from_env(get)
            .overlay(self)
            .overlay(Self::from_args(args))
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(super::tls::provider());
        let mut roots = rustls::RootCertStore::empty();
        let mut add_pem = |pem: &[u8], origin: &str| -> Result<(), String> {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("{origin}: not a PEM certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{origin}: unusable CA certificate: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!("{origin}: no PEM certificate found"));
            }
            Ok(())
        };
        let mut any_ca = false;
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("CA certificate {}: {e}", path.display()))?;
            add_pem(&pem, &format!("CA certificate {}", path.display()))?;
            any_ca = true;
        }
        if let Some(pem) = &self.ca_cert_pem {
            add_pem(pem, "CACERT_BYTES")?;
            any_ca = true;
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("CA directory {}: {e}", dir.display()))?;
            for entry in entries.flatten() {
                if let Ok(pem) = std::fs::read(entry.path()) {
                    // Files that are not PEM certificates are skipped, as the Go loader does.
                    let _ = add_pem(&pem, "CA directory");
                }
            }
            any_ca = true;
        }
        if !any_ca {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if self.insecure == Some(true) {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("TLS trust store: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedVerifier {
                    inner: webpki,
                    name: self.server_name.clone(),
                }))
        };
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("client key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate: {e}"))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err("both client cert and client key must be provided".to_owned()),
        }
    }
}

fn parse_bool(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "t" | "true")
}

/// Verifies with WebPKI, against an overridden name when `TLS_SERVER_NAME` is set.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: Option<String>,
}

impl rustls::client::danger::ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let name = match &self.name {
            Some(n) => ServerName::try_from(n.as_str())
                .map_err(|_| rustls::Error::General("invalid TLS server name".into()))?,
            None => server_name.to_owned(),
        };
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `-tls-skip-verify`: accepts any certificate (still checks handshake signatures).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate and key the host wrapped for this plugin.
pub(crate) struct ServerTls {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key_sec1: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

/// The `addr` claim of the wrapping token (the payload is read without checking the
/// signature: the plugin cannot, and the unwrap call itself proves the token).
pub(crate) fn addr_claim(token: &str) -> Result<String, String> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(
            "error parsing wrapping token: not a JWT (expected three dot-separated parts)".into(),
        );
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "error parsing wrapping token: the payload is not base64url".to_owned())?;
    #[derive(Deserialize)]
    struct Claims {
        addr: Option<serde_json::Value>,
    }
    let claims: Claims = serde_json::from_slice(&bytes)
        .map_err(|_| "error parsing wrapping token: the payload is not a JSON object".to_owned())?;
    match claims.addr {
        None | Some(serde_json::Value::Null) => Err("no vault api_addr found".into()),
        Some(serde_json::Value::String(s)) if s.is_empty() => Err("no vault api_addr found".into()),
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err("could not validate addr claim".into()),
    }
}

#[derive(Deserialize)]
struct UnwrapResponse {
    data: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    errors: Vec<String>,
}

fn decode_field(
    data: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Vec<u8>, String> {
    match data.get(key) {
        None | Some(serde_json::Value::Null) => Err(format!(
            "the unwrapped response has no `data.{key}`: the token did not wrap a plugin TLS certificate"
        )),
        Some(serde_json::Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| format!("error parsing certificate: `data.{key}` is not base64")),
        Some(_) => Err("error unmarshalling certificate".to_owned()),
    }
}

/// Unwraps the token and returns the server TLS identity.
pub(crate) async fn fetch_server_tls(
    get: &impl Fn(&str) -> Option<OsString>,
    tls: &UnwrapTlsConfig,
) -> Result<ServerTls, String> {
    let token = read_bao_or_vault(get, "UNWRAP_TOKEN").unwrap_or_default();
    if token.is_empty() {
        return Err(
            "TLS unwrap failed: VAULT_UNWRAP_TOKEN (or BAO_UNWRAP_TOKEN) is not set; \
                    the host passes one to v4 plugins it starts without AutoMTLS"
                .into(),
        );
    }
    let mut addr = addr_claim(&token).map_err(|e| format!("TLS unwrap failed: {e}"))?;
    // The Go API client uses the agent address instead when one is configured.
    if let Some(agent) = read_bao_or_vault(get, "AGENT_ADDR").filter(|a| !a.is_empty()) {
        addr = agent;
    }
    let namespace = read_bao_or_vault(get, "NAMESPACE").filter(|n| !n.is_empty());
    let uri = unwrap_uri(&addr)?;
    let client_tls = if uri.scheme_str() == Some("https") {
        Some(Arc::new(
            tls.client_config()
                .map_err(|e| format!("TLS unwrap failed: {e}"))?,
        ))
    } else {
        None
    };
    let mut uri = uri;
    let mut redirects = 0;
    let mut attempt = 0;
    let (status, body) = loop {
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            put(&uri, &token, namespace.as_deref(), client_tls.clone()),
        )
        .await
        .unwrap_or_else(|_| Err("the request timed out after 60s".into()));
        match result {
            Ok((status, location, body)) if status.is_redirection() && redirects == 0 => {
                let Some(next) = location.and_then(|l| l.parse::<http::Uri>().ok()) else {
                    break (status, body);
                };
                uri = next;
                redirects += 1;
            }
            Ok((status, _, body)) if status.is_server_error() && attempt < 2 => {
                attempt += 1;
                let _ = body;
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
            Ok((status, _, body)) => break (status, body),
            Err(e) if attempt < 2 && !e.contains("certificate") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
            Err(e) => {
                return Err(format!(
                    "TLS unwrap failed: cannot reach {}: {e}",
                    uri.authority().map_or("the host", |a| a.as_str())
                ));
            }
        }
    };
    parse_unwrap_response(status, &body, &token)
}

/// The unwrap endpoint under the API address of the token's `addr` claim (or the agent's).
pub(crate) fn unwrap_uri(addr: &str) -> Result<http::Uri, String> {
    format!("{}/v1/sys/wrapping/unwrap", addr.trim_end_matches('/'))
        .parse()
        .map_err(|_| "TLS unwrap failed: could not parse addr claim".to_owned())
}

/// The host's final answer to the unwrap `PUT`: the server TLS identity on success, else an
/// error naming the status and the host's `errors` (with the token, if echoed, redacted).
pub(crate) fn parse_unwrap_response(
    status: http::StatusCode,
    body: &[u8],
    token: &str,
) -> Result<ServerTls, String> {
    if !status.is_success() {
        let errors = serde_json::from_slice::<ErrorResponse>(body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        // An empty pattern would match between every character; the caller never passes an
        // empty token, but this function does not rely on it.
        let errors = if token.is_empty() {
            errors
        } else {
            errors.replace(token, "[token]")
        };
        return Err(format!(
            "TLS unwrap failed: the host answered {status}{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(": {errors}")
            }
        ));
    }
    let response: UnwrapResponse = serde_json::from_slice(body)
        .map_err(|_| "TLS unwrap failed: the response is not the JSON of an unwrap".to_owned())?;
    let data = response
        .data
        .ok_or_else(|| "TLS unwrap failed: the response has no `data`".to_owned())?;
    let cert = decode_field(&data, "ServerCert").map_err(|e| format!("TLS unwrap failed: {e}"))?;
    let key_sec1 =
        decode_field(&data, "ServerKey").map_err(|e| format!("TLS unwrap failed: {e}"))?;
    Ok(ServerTls {
        cert: CertificateDer::from(cert),
        key_sec1,
    })
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// One `PUT` over HTTP/1.1; returns status, `Location` and body.
async fn put(
    uri: &http::Uri,
    token: &str,
    namespace: Option<&str>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(http::StatusCode, Option<String>, Bytes), String> {
    let host = uri.host().ok_or("the addr claim has no host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| e.to_string())?;
    let stream: Box<dyn Stream> = match tls {
        Some(config) => {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|_| "invalid host name".to_owned())?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            Box::new(tls)
        }
        None => Box::new(tcp),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::builder()
        .method(http::Method::PUT)
        .uri(path)
        .header(
            http::header::HOST,
            uri.authority().map_or(host.as_str(), |a| a.as_str()),
        )
        .header("X-Vault-Token", token)
        .header("X-Vault-Request", "true")
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(ns) = namespace {
        request = request.header("X-Vault-Namespace", ns);
    }
    let request = request
        .body(Full::new(Bytes::from_static(b"null")))
        .map_err(|_| "cannot build the request (invalid header value)".to_owned())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    conn.abort();
    Ok((status, location, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            b.encode(r#"{"alg":"ES512","typ":"JWT"}"#),
            b.encode(payload),
            b.encode("sig")
        )
    }

    #[test]
    fn addr_claim_is_read_and_errors_never_contain_the_token() {
        assert_eq!(
            addr_claim(&jwt(
                r#"{"addr":"https://127.0.0.1:8200","type":"wrapping"}"#
            ))
            .unwrap(),
            "https://127.0.0.1:8200"
        );
        assert_eq!(
            addr_claim(&jwt(r#"{"addr":""}"#)).unwrap_err(),
            "no vault api_addr found"
        );
        assert_eq!(
            addr_claim(&jwt(r#"{"addr":5}"#)).unwrap_err(),
            "could not validate addr claim"
        );
        let secret = "s.verysecrettoken";
        let e = addr_claim(secret).unwrap_err();
        assert!(!e.contains(secret));
        let e = addr_claim("a.!!!.c").unwrap_err();
        assert!(e.contains("base64url"));
    }

    #[test]
    fn unwrap_response_yields_the_identity_or_a_redacted_error() {
        let ok = br#"{"request_id":"r","data":{"ServerCert":"MAEC","ServerKey":"AwQ="},"wrap_info":null}"#;
        let tls = parse_unwrap_response(http::StatusCode::OK, ok, "t.o.k").unwrap();
        assert_eq!(tls.cert.as_ref(), &[0x30, 0x01, 0x02]);
        assert_eq!(tls.key_sec1, vec![3, 4]);
        let e = parse_unwrap_response(http::StatusCode::OK, br#"{"data":null}"#, "t").unwrap_err();
        assert!(e.ends_with("the response has no `data`"), "{e}");
        let e = parse_unwrap_response(http::StatusCode::OK, b"<html>", "t").unwrap_err();
        assert!(e.contains("not the JSON of an unwrap"), "{e}");
        let body = br#"{"errors":["token s.secret is invalid","denied"]}"#;
        let e = parse_unwrap_response(http::StatusCode::BAD_REQUEST, body, "s.secret").unwrap_err();
        assert_eq!(
            e,
            "TLS unwrap failed: the host answered 400 Bad Request: token [token] is invalid; denied"
        );
        // An empty token redacts nothing (rather than matching between every character).
        let e = parse_unwrap_response(http::StatusCode::FORBIDDEN, br#"{"errors":["no"]}"#, "")
            .unwrap_err();
        assert!(e.ends_with(": no"), "{e}");
        assert_eq!(
            unwrap_uri("https://127.0.0.1:8200/").unwrap().to_string(),
            "https://127.0.0.1:8200/v1/sys/wrapping/unwrap"
        );
        assert!(unwrap_uri("http://a b").is_err());
    }

    #[test]
    fn args_follow_go_flag_syntax_and_win_over_env() {
        let args: Vec<String> = [
            "-ca-cert",
            "/a.pem",
            "--tls-server-name=vault",
            "-tls-skip-verify",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let env = |k: &str| match k {
            "VAULT_CACERT" => Some(OsString::from("/env.pem")),
            "VAULT_CAPATH" => Some(OsString::from("/dir")),
            _ => None,
        };
        let c = UnwrapTlsConfig::default()
            .client_cert("/c.pem")
            .with_env_and_args(&env, &args);
        assert_eq!(c.ca_cert, Some(PathBuf::from("/a.pem")));
        assert_eq!(c.ca_path, Some(PathBuf::from("/dir")));
        assert_eq!(c.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(c.server_name.as_deref(), Some("vault"));
        assert_eq!(c.insecure, Some(true));
    }

    #[test]
    fn client_cert_without_key_is_refused() {
        let e = UnwrapTlsConfig::default()
            .client_cert("/c.pem")
            .insecure_skip_verify(true)
            .client_config()
            .unwrap_err();
        assert_eq!(e, "both client cert and client key must be provided");
    }
}
