//! OIDC bearer tokens through the built binary, against a fake issuer: a real HTTP server in
//! the test serving a discovery document and a JWK set. Tokens are signed with a key made
//! for these tests only (tests/fixtures/oidc-test-key.pem, whose public half is in
//! oidc-test-jwks.json).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{Server, client, hearth, run, stderr_of};

const TEST_KEY: &str = include_str!("../fixtures/oidc-test-key.pem");
const TEST_JWKS: &str = include_str!("../fixtures/oidc-test-jwks.json");

/// Serves the issuer's discovery document and keys; returns the issuer URL.
fn fake_issuer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("address"));
    let discovery =
        serde_json::json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
            }
            let body = if request_line.contains("/.well-known/openid-configuration") {
                discovery.clone()
            } else {
                TEST_JWKS.to_string()
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    issuer
}

fn token(issuer: &str, claims: serde_json::Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut full = serde_json::json!({
        "iss": issuer, "aud": "hearth", "sub": "user-42", "exp": now + 600, "iat": now,
        "tenant": "acme", "role": "member"
    });
    for (name, value) in claims.as_object().expect("claims") {
        full[name] = value.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".to_string());
    jsonwebtoken::encode(
        &header,
        &full,
        &EncodingKey::from_rsa_pem(TEST_KEY.as_bytes()).expect("test key"),
    )
    .expect("signed")
}

fn status(server: &Server, path: &str, bearer: &str) -> (u16, serde_json::Value) {
    let response = client()
        .get(server.url(path))
        .bearer_auth(bearer)
        .send()
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or_default())
}

#[test]
fn tokens_of_the_configured_issuer_are_accepted_with_their_tenant_and_role() {
    let issuer = fake_issuer();
    let server_issuer = issuer.clone();
    let server = Server::start(move |command, home| {
        // The tenant tokens name must exist.
        let output = run(hearth(home)
            .arg("--data-dir")
            .arg(home.join("data"))
            .args(["keys", "create", "--tenant", "acme", "--role", "reader"]));
        assert!(output.status.success(), "{}", stderr_of(&output));
        command
            .env("HEARTH_AUTH_OIDC_ISSUER", &server_issuer)
            .env("HEARTH_AUTH_OIDC_AUDIENCE", "hearth");
    });
    // Loopback, yet credentials are required once an issuer is configured.
    assert_eq!(status(&server, "/v1/models", "").0, 401);

    let member = token(&issuer, serde_json::json!({}));
    let started = Instant::now();
    while status(&server, "/v1/models", &member).0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the token is never accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A reader's token may not generate; a member's may (the model is missing here: 404).
    let reader = token(&issuer, serde_json::json!({"role": "reader"}));
    let forbidden = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&reader)
        .json(&serde_json::json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .expect("request");
    assert_eq!(forbidden.status(), 403);
    let allowed = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&member)
        .json(&serde_json::json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .expect("request");
    assert_eq!(allowed.status(), 404);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for (claims, code) in [
        (serde_json::json!({"exp": now - 3600}), "invalid_token"),
        (serde_json::json!({"aud": "someone-else"}), "invalid_token"),
        (
            serde_json::json!({"iss": "https://impostor.example"}),
            "invalid_token",
        ),
        (serde_json::json!({"tenant": "globex"}), "unknown_tenant"),
        (serde_json::json!({"role": "superuser"}), "invalid_token"),
    ] {
        let (status, body) = status(&server, "/v1/models", &token(&issuer, claims.clone()));
        assert_eq!(status, 401, "{claims}: {body}");
        assert_eq!(body["error"]["code"], code, "{claims}: {body}");
    }
    // A token signed with HMAC, using the public key set as the secret, is refused.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-1".to_string());
    let forged = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"iss": issuer, "aud": "hearth", "sub": "x", "exp": now + 600, "tenant": "acme"}),
        &EncodingKey::from_secret(TEST_JWKS.as_bytes()),
    )
    .expect("forged");
    let (forged_status, body) = status(&server, "/v1/models", &forged);
    assert_eq!(forged_status, 401, "{body}");
}
