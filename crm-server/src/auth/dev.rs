//! The development signing key of the embedded default: an Ed25519 key kept in the data folder,
//! trusted only by a server without a configured issuer. `crm-server dev-token` signs with it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use super::{ClaimNames, Keys, UserRole, Verifier};

pub const ISSUER: &str = "crm-server-dev";
pub const AUDIENCE: &str = "crm";
const FILE: &str = "dev-signing-key";

/// PKCS#8 v1 framing of a raw Ed25519 seed (RFC 8410).
const PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

pub struct DevKey {
    seed: [u8; 32],
}

impl DevKey {
    /// The key in `dir`, created (mode 0600) on first use.
    pub fn load_or_create(dir: &Path) -> Result<DevKey, String> {
        let path = dir.join(FILE);
        if let Ok(bytes) = fs::read(&path) {
            let seed: [u8; 32] =
                bytes.try_into().map_err(|_| format!("{} is not a 32-byte key", path.display()))?;
            return Ok(DevKey { seed });
        }
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| "no randomness for a key".to_owned())?;
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&seed))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(DevKey { seed })
    }

    fn public_key(&self) -> Result<Vec<u8>, String> {
        Ed25519KeyPair::from_seed_unchecked(&self.seed)
            .map(|pair| pair.public_key().as_ref().to_vec())
            .map_err(|_| "unusable key".to_owned())
    }

    /// The public key as PEM (SubjectPublicKeyInfo), for a server configured with
    /// `--jwt-public-key` (the benchmark runs the release binary that way).
    pub fn public_pem(&self) -> Result<String, String> {
        const SPKI_PREFIX: [u8; 12] =
            [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        let der: Vec<u8> = SPKI_PREFIX.iter().copied().chain(self.public_key()?).collect();
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        Ok(format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"))
    }

    /// A verifier that trusts this key only.
    pub fn verifier(&self, claims: ClaimNames) -> Result<Verifier, String> {
        let x = URL_SAFE_NO_PAD.encode(self.public_key()?);
        let key = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
        Ok(Verifier {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            algorithms: vec![Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            claims,
            keys: Keys::Static(vec![key]),
        })
    }

    /// A token for `subject` with `roles`, `territories` and `chains`, valid for `ttl`.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[UserRole],
        territories: &[String],
        chains: &[uuid::Uuid],
        ttl: Duration,
    ) -> Result<String, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now,
            "exp": now + ttl.as_secs(),
            "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "territories": territories,
            "chains": chains,
        });
        let der: Vec<u8> = PKCS8_PREFIX.iter().chain(self.seed.iter()).copied().collect();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &EncodingKey::from_ed_der(&der))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_minted_token_verifies_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let token =
            key.mint("u_dev", &[UserRole::SalesRep], &["BY".into()], &[], Duration::from_secs(60)).unwrap();
        let identity = key.verifier(ClaimNames::default()).unwrap().verify(&token).await.unwrap();
        assert_eq!(identity.subject, "u_dev");
        assert_eq!(identity.territories, ["BY"]);

        let again = DevKey::load_or_create(dir.path()).unwrap();
        assert!(again.verifier(ClaimNames::default()).unwrap().verify(&token).await.is_ok());
        let other = DevKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.verifier(ClaimNames::default()).unwrap().verify(&token).await.is_err());

        // The PEM form is the same key.
        let from_pem = crate::auth::public_key_from_pem(key.public_pem().unwrap().as_bytes()).unwrap();
        let verifier =
            Verifier { keys: Keys::Static(vec![from_pem]), ..key.verifier(ClaimNames::default()).unwrap() };
        assert!(verifier.verify(&token).await.is_ok());
    }
}
