//! Bearer tokens: the attack set of the identity issue as a table, the issuer's JWKS with key
//! rotation and its refresh limit, and configurable claim paths.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_server::auth::{ClaimNames, Jwks, Keys, Verifier, public_key_from_pem};
use crm_server::config::HttpArgs;
use crm_server::testing::{TestApp, TestResponse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://sso.freshfoodz.test/realms/crm";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn verifier(keys: Keys, claims: ClaimNames) -> Verifier {
    Verifier {
        issuer: ISSUER.into(),
        audiences: vec!["crm".into()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        leeway: Duration::from_secs(5),
        claims,
        keys,
    }
}

fn static_keys() -> Keys {
    Keys::Static(
        ["rsa.pub.pem", "ec.pub.pem", "ed.pub.pem"]
            .iter()
            .map(|f| public_key_from_pem(&fixture(f)).unwrap())
            .collect(),
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "crm", "sub": "u_42", "exp": now() + 600, "nbf": now() - 5,
           "roles": ["team-lead"], "territories": ["BY"]})
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa.pem")).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec.pem")).unwrap()
}

fn ed(name: &str) -> EncodingKey {
    EncodingKey::from_ed_pem(&fixture(name)).unwrap()
}

/// A token put together by hand: any header, any payload, any signature.
fn raw(header: &Value, payload: &Value, signature: &[u8]) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{}", part(header), part(payload), URL_SAFE_NO_PAD.encode(signature))
}

async fn call(app: &TestApp, token: &str) -> TestResponse {
    let authorization = format!("Bearer {token}");
    app.send(Method::GET, "/customers", &[("authorization", &authorization)], "").await
}

fn assert_invalid_token(res: &TestResponse, case: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{case}: {}", res.text());
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with(r#"Bearer realm="crm", error="invalid_token""#), "{case}: {challenge}");
    res.problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn valid_tokens_of_every_accepted_algorithm_get_in() {
    let app = TestApp::spawn_verified(
        HttpArgs::default(),
        Router::new(),
        Some(verifier(static_keys(), ClaimNames::default())),
    )
    .await;
    for token in [
        sign(Algorithm::RS256, &rsa(), &claims()),
        sign(Algorithm::ES256, &ec(), &claims()),
        sign(Algorithm::EdDSA, &ed("ed.pem"), &claims()),
    ] {
        let res = call(&app, &token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
}

#[tokio::test]
async fn every_attack_of_the_set_is_a_401_with_a_reason() {
    let app = TestApp::spawn_verified(
        HttpArgs::default(),
        Router::new(),
        Some(verifier(static_keys(), ClaimNames::default())),
    )
    .await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims();
        change(&mut c);
        c
    };
    let valid = sign(Algorithm::RS256, &rsa(), &claims());
    let mut tampered = valid.clone();
    let payload_start = tampered.find('.').unwrap() + 1;
    tampered.replace_range(payload_start..payload_start + 4, "eyJz");
    // An HMAC token whose secret is the RSA public key: algorithm confusion.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&fixture("rsa.pub.pem")),
    )
    .unwrap();
    let mut deep = json!("x");
    for _ in 0..2000 {
        deep = json!([deep]);
    }
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", raw(&json!({"alg": "none", "typ": "JWT"}), &claims(), b""), "malformed"),
        ("HMAC with the public key", confused, "not accepted"),
        ("expired", sign(Algorithm::RS256, &rsa(), &with(&|c| c["exp"] = json!(now() - 60))), "expired"),
        (
            "not yet valid",
            sign(Algorithm::RS256, &rsa(), &with(&|c| c["nbf"] = json!(now() + 600))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            sign(Algorithm::RS256, &rsa(), &with(&|c| c["iss"] = json!("https://evil.test"))),
            "issuer",
        ),
        (
            "wrong audience",
            sign(Algorithm::RS256, &rsa(), &with(&|c| c["aud"] = json!("billing"))),
            "audience",
        ),
        (
            "no expiry",
            sign(
                Algorithm::RS256,
                &rsa(),
                &with(&|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap_or(())),
            ),
            "exp",
        ),
        (
            "no subject",
            sign(
                Algorithm::RS256,
                &rsa(),
                &with(&|c| c.as_object_mut().unwrap().remove("sub").map(drop).unwrap_or(())),
            ),
            "sub",
        ),
        ("unknown key", sign(Algorithm::EdDSA, &ed("other-ed.pem"), &claims()), "signature"),
        ("bad signature", tampered, "token"),
        ("not a JWT", "definitely.not.a-token".into(), "malformed"),
        ("two parts", "abc.def".into(), "malformed"),
        ("garbage", "%%%".into(), "malformed"),
        ("oversized", "a".repeat(9000), "8 KiB"),
        ("deeply nested header", raw(&json!({"alg": "RS256", "x": deep}), &claims(), b"sig"), "malformed"),
        (
            "territory that is no code",
            sign(Algorithm::RS256, &rsa(), &with(&|c| c["territories"] = json!(["Bayern"]))),
            "claims",
        ),
    ];
    for (case, token, reason) in cases {
        let res = call(&app, &token).await;
        assert_invalid_token(&res, case);
        let detail = res.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(reason), "{case}: {detail}");
    }
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_plain_challenge() {
    let app = TestApp::spawn().await;
    for path in ["/customers", "/fields", "/admin/log-level"] {
        let res = app.send(Method::GET, path, &[("authorization", "")], "").await;
        res.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(res.header("www-authenticate"), Some(r#"Bearer realm="crm""#), "{path}");
    }
    let basic = app.send(Method::GET, "/customers", &[("authorization", "Basic dXNlcjpwdw==")], "").await;
    assert_invalid_token(&basic, "basic auth");
    // Health, readiness, metrics and the OpenAPI document stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let res = app.send(Method::GET, path, &[("authorization", "")], "").await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
    }
}

/// Keycloak puts roles in `realm_access.roles`; the claim path is configuration.
#[tokio::test]
async fn roles_are_read_from_the_configured_claim_path() {
    let names = ClaimNames { roles: "realm_access.roles".into(), ..ClaimNames::default() };
    let app =
        TestApp::spawn_verified(HttpArgs::default(), Router::new(), Some(verifier(static_keys(), names)))
            .await;
    let mut keycloak = claims();
    keycloak.as_object_mut().unwrap().remove("roles");
    keycloak["realm_access"] = json!({"roles": ["offline_access", "admin"]});
    let res = app
        .send(
            Method::GET,
            "/admin/log-level",
            &[("authorization", &format!("Bearer {}", sign(Algorithm::RS256, &rsa(), &keycloak)))],
            "",
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // The flat claim is not read any more: a token with roles only there is no admin.
    let mut flat = claims();
    flat["roles"] = json!(["admin"]);
    let res = app
        .send(
            Method::GET,
            "/admin/log-level",
            &[("authorization", &format!("Bearer {}", sign(Algorithm::RS256, &rsa(), &flat)))],
            "",
        )
        .await;
    res.problem(StatusCode::FORBIDDEN);
}

/// A JWKS issuer on loopback: the set holds `kids`, and every fetch is counted.
async fn jwks_issuer(kids: Arc<std::sync::Mutex<Vec<&'static str>>>, fetches: Arc<AtomicUsize>) -> String {
    let public = fixture("ed.pub.pem");
    // The raw 32-byte key is the tail of the SubjectPublicKeyInfo.
    let der = pem_body(&public);
    let x = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let router = Router::new().route(
        "/jwks",
        get(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<Value> = kids
                .lock()
                .unwrap()
                .iter()
                .map(|kid| json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}))
                .collect();
            async move { axum::Json(json!({"keys": keys})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/jwks")
}

fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

fn with_kid(kid: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims(), &ed("ed.pem")).unwrap()
}

#[tokio::test]
async fn the_jwks_is_refetched_for_a_rotated_key_but_not_for_every_unknown_one() {
    let kids = Arc::new(std::sync::Mutex::new(vec!["2026-11"]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let url = jwks_issuer(kids.clone(), fetches.clone()).await;
    let jwks = Jwks::new(url, Duration::from_millis(300)).unwrap();
    let app = TestApp::spawn_verified(
        HttpArgs::default(),
        Router::new(),
        Some(verifier(Keys::Jwks(Box::new(jwks)), ClaimNames::default())),
    )
    .await;

    assert_eq!(call(&app, &with_kid("2026-11")).await.status, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(call(&app, &with_kid("2026-11")).await.status, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "a known key is served from the cache");

    // A flood of made-up key ids costs the issuer at most one fetch per refresh interval.
    for n in 0..20 {
        assert_invalid_token(&call(&app, &with_kid(&format!("forged-{n}"))).await, "unknown kid");
    }
    assert!(fetches.load(Ordering::SeqCst) <= 2, "{} fetches", fetches.load(Ordering::SeqCst));

    // The issuer rotates its key: once the interval has passed, the new kid is fetched. Until
    // then a token with it is refused, and retrying it costs the issuer nothing more.
    kids.lock().unwrap().push("2026-12");
    let before = fetches.load(Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while call(&app, &with_kid("2026-12")).await.status != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "the rotated key was never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1, "one fetch found the rotated key");
    let res =
        call(&app, &jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(), &ed("ed.pem")).unwrap())
            .await;
    assert_invalid_token(&res, "no kid with a JWKS");
}
