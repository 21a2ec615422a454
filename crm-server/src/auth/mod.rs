//! Authentication: bearer JWTs from the OIDC issuer in front of the CRM, checked against its JWKS
//! or against public keys from the configuration.
//!
//! Only asymmetric algorithms from an explicit list are accepted (RS256, ES256, EdDSA by default),
//! and a key is only ever used with the algorithm family it belongs to, so `alg: none` and HMAC
//! tokens signed with a public key (algorithm confusion) fail. Every failure is a 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` and a reason; the reasons name what is wrong
//! (expired, wrong issuer...) but never echo token contents.
//!
//! Without an issuer configured, the embedded default trusts a development key kept in its data
//! folder (`crm-server dev-token` mints tokens with it); a server with an issuer never does.

pub mod dev;
pub mod identity;
mod jwks;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use identity::{ClaimNames, Identity, UserRole};
pub use jwks::Jwks;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token is refused. The text is the `error_description` of the 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token is signed with {0:?}, which is not accepted")]
    Algorithm(Algorithm),
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    /// A bad signature on a server that trusts only the development key of a data folder.
    #[error(
        "the token's signature is invalid: this server trusts the development key in {0}; mint tokens \
         with `crm-server dev-token --data-dir {0}`"
    )]
    DevKeySignature(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token lacks the claim {0}")]
    MissingClaim(String),
    #[error("the token's claims are unusable: {0}")]
    Claims(String),
}

/// Where verification keys come from.
pub enum Keys {
    /// Fixed keys (from files, or the development key), tried in order for the token's algorithm.
    Static(Vec<DecodingKey>),
    Jwks(Box<Jwks>),
    /// The development key of the embedded default, and the data folder it is kept in.
    Dev {
        key: DecodingKey,
        folder: std::path::PathBuf,
    },
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::Static(keys) => write!(f, "Static({} keys)", keys.len()),
            Keys::Jwks(jwks) => write!(f, "{jwks:?}"),
            Keys::Dev { folder, .. } => write!(f, "Dev({})", folder.display()),
        }
    }
}

#[derive(Debug)]
pub struct Verifier {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub claims: ClaimNames,
    pub keys: Keys,
}

impl Verifier {
    /// The identity in `token`, or why the token is refused.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("longer than 8 KiB"));
        }
        if token.split('.').count() != 3 {
            return Err(AuthError::Malformed("not three dot-separated parts"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed("unreadable header"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Algorithm(header.alg));
        }
        let candidates: Vec<DecodingKey> = match &self.keys {
            Keys::Static(keys) => keys.iter().filter(|k| fits(k, header.alg)).cloned().collect(),
            Keys::Dev { key, .. } => [key].into_iter().filter(|k| fits(k, header.alg)).cloned().collect(),
            Keys::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(AuthError::Malformed("no key id (kid)"))?;
                vec![jwks.key(kid).await.filter(|k| fits(k, header.alg)).ok_or(AuthError::UnknownKey)?]
            }
        };
        if candidates.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = AuthError::Signature;
        for key in &candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
                Ok(data) => {
                    return Identity::from_claims(&data.claims, &self.claims)
                        .map_err(|e| AuthError::Claims(e.to_string()));
                }
                Err(error) => last = classify(error.kind()),
            }
        }
        // Tokens minted from another data folder's key are the usual mistake on the embedded
        // default: say which folder's key this server trusts.
        if let (AuthError::Signature, Keys::Dev { folder, .. }) = (&last, &self.keys) {
            tracing::warn!(
                trusted_key_folder = %folder.display(),
                "a token's signature does not match the development key; was it minted with another --data-dir?"
            );
            return Err(AuthError::DevKeySignature(folder.display().to_string()));
        }
        Err(last)
    }
}

/// A key is only used with the algorithms of its own family (so never an RSA public key as an
/// HMAC secret).
fn fits(key: &DecodingKey, alg: Algorithm) -> bool {
    key.family() == alg.family()
}

fn classify(kind: &jsonwebtoken::errors::ErrorKind) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidIssuer => AuthError::Issuer,
        K::InvalidAudience => AuthError::Audience,
        K::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        K::InvalidClaimFormat(claim) => AuthError::Claims(format!("{claim} has the wrong type")),
        K::InvalidSignature | K::InvalidAlgorithm => AuthError::Signature,
        _ => AuthError::Malformed("unreadable"),
    }
}

/// The verifier the configuration asks for, or `None` when no issuer is configured (the embedded
/// default then trusts its development key).
pub fn configured(args: &crate::config::AuthArgs) -> Result<Option<Verifier>, String> {
    let Some(issuer) = &args.oidc_issuer else {
        if args.jwks_url.is_some() || !args.jwt_public_key.is_empty() {
            return Err("--jwks-url and --jwt-public-key need --oidc-issuer".into());
        }
        return Ok(None);
    };
    let keys = match (&args.jwks_url, args.jwt_public_key.as_slice()) {
        (Some(url), []) => Keys::Jwks(Box::new(Jwks::new(url.clone(), args.jwks_min_refresh)?)),
        (None, paths) if !paths.is_empty() => {
            let mut keys = Vec::new();
            for path in paths {
                let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                keys.push(public_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            Keys::Static(keys)
        }
        (Some(_), _) => return Err("give either --jwks-url or --jwt-public-key, not both".into()),
        (None, _) => return Err("with --oidc-issuer, give --jwks-url or --jwt-public-key".into()),
    };
    Ok(Some(Verifier {
        issuer: issuer.clone(),
        audiences: args.oidc_audience.clone(),
        algorithms: args.jwt_algorithms.clone(),
        leeway: args.jwt_leeway,
        claims: args.claim_names(),
        keys,
    }))
}

/// Reads a PEM public key (RSA, EC or Ed25519) for static verification.
pub fn public_key_from_pem(pem: &[u8]) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| "not an RSA, EC or Ed25519 public key in PEM".to_owned())
}
