//! The development signing key of the embedded default: an Ed25519 key kept in the data folder,
//! trusted only by a server without a configured issuer. `crm-server dev-token` signs with it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
    /// The data folder it is kept in: refusals name it, since a token signed by another
    /// folder's key is the usual reason one does not verify.
    dir: PathBuf,
    /// Made by this call rather than found.
    created: bool,
}

impl DevKey {
    /// The key in `dir`, created (mode 0600) on first use.
    pub fn load_or_create(dir: &Path) -> Result<DevKey, String> {
        let path = dir.join(FILE);
        if let Ok(bytes) = fs::read(&path) {
            let seed: [u8; 32] =
                bytes.try_into().map_err(|_| format!("{} is not a 32-byte key", path.display()))?;
            return Ok(DevKey { seed, dir: dir.to_owned(), created: false });
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
        Ok(DevKey { seed, dir: dir.to_owned(), created: true })
    }

    /// The data folder the key is kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether [`DevKey::load_or_create`] made the key rather than found it: no server has used
    /// the folder yet.
    pub fn created(&self) -> bool {
        self.created
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
            keys: Keys::Dev { key, folder: self.dir.clone() },
        })
    }

    /// The subject of a token minted without one: `dev-` with the roles and territories
    /// (`dev-admin`, `dev-sales-rep-BY`, `dev-team-lead-BY+NW`), so that tokens of different roles
    /// are different users; idempotent replies, for one, are stored per subject.
    pub fn default_subject(roles: &[UserRole], territories: &[String]) -> String {
        let mut subject = String::from("dev-");
        subject.push_str(&roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+"));
        if !territories.is_empty() {
            subject.push('-');
            subject.push_str(&territories.join("+"));
        }
        subject
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

    #[tokio::test]
    async fn a_token_of_another_folders_key_is_refused_naming_the_folder_trusted() {
        let trusted = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(trusted.path()).unwrap();
        let other = DevKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        let token = other.mint("u_dev", &[UserRole::Admin], &[], &[], Duration::from_secs(60)).unwrap();
        let refused = key.verifier(ClaimNames::default()).unwrap().verify(&token).await.unwrap_err();
        assert_eq!(refused, crate::auth::AuthError::DevKeySignature(trusted.path().display().to_string()));
        let text = refused.to_string();
        assert!(
            text.contains("signature is invalid") && text.contains(&trusted.path().display().to_string())
        );
    }

    #[test]
    fn keys_say_whether_they_were_made_or_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DevKey::load_or_create(dir.path()).unwrap().created());
        let found = DevKey::load_or_create(dir.path()).unwrap();
        assert!(!found.created());
        assert_eq!(found.dir(), dir.path());
    }

    #[test]
    fn default_subjects_differ_by_role_and_territory() {
        let by = ["BY".to_owned()];
        let subjects = [
            DevKey::default_subject(&[UserRole::Admin], &[]),
            DevKey::default_subject(&[UserRole::SalesRep], &by),
            DevKey::default_subject(&[UserRole::SalesRep], &["NW".to_owned()]),
            DevKey::default_subject(&[UserRole::TeamLead], &["BY".to_owned(), "NW".to_owned()]),
        ];
        assert_eq!(subjects, ["dev-admin", "dev-sales-rep-BY", "dev-sales-rep-NW", "dev-team-lead-BY+NW"]);
    }
}
