//! The issuer's JSON Web Key Set, fetched and cached. An unknown key id triggers a refresh (the
//! issuer rotated its keys), at most once per `min_refresh`, so a flood of tokens with made-up key
//! ids cannot turn into a flood of requests to the issuer. The set is also refreshed when older
//! than an hour, so revoked keys do not stay trusted forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::{Mutex, RwLock};

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Refresh a set older than this on the next lookup.
const MAX_AGE: Duration = Duration::from_secs(3600);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub struct Jwks {
    url: String,
    min_refresh: Duration,
    client: HttpsClient,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the set was last fetched; held while fetching, so concurrent misses share one fetch.
    fetched: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Jwks {
    pub fn new(url: String, min_refresh: Duration) -> Result<Jwks, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS setup: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Jwks { url, min_refresh, client, keys: RwLock::default(), fetched: Mutex::default() })
    }

    /// The key with id `kid`, fetching the set again if it is unknown (or old) and the last
    /// fetch is long enough ago.
    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let stale = self.fetched.lock().await.is_none_or(|at| at.elapsed() > MAX_AGE);
        if !stale && let Some(key) = self.keys.read().await.get(kid) {
            return Some(key.clone());
        }
        {
            let mut fetched = self.fetched.lock().await;
            let due = fetched.is_none_or(|at| at.elapsed() >= self.min_refresh);
            if due {
                match self.fetch().await {
                    Ok(keys) => {
                        tracing::info!(url = self.url, keys = keys.len(), "fetched the issuer's keys");
                        *self.keys.write().await = keys;
                    }
                    Err(error) => tracing::warn!(url = self.url, %error, "fetching the issuer's keys failed"),
                }
                *fetched = Some(Instant::now());
            }
        }
        self.keys.read().await.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let request = http::Request::get(&self.url).body(Empty::new()).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body =
            Limited::new(response.into_body(), MAX_JWKS_BYTES).collect().await.map_err(|e| e.to_string())?;
        let set: JwkSet = serde_json::from_slice(&body.to_bytes()).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }
}
