//! Secrets the server must read back (webhook signing secrets) are stored sealed: AES-256-GCM
//! under a key derived from `INCUBASE_SECRETS_KEY` (HMAC-SHA256 of a fixed label), a random
//! 96-bit nonce per sealing, and the purpose (e.g. `webhook_endpoints.secret`) as associated
//! data, so a sealed value copied into another column does not open there. Stored as
//! `sealed:v1:<base64 of nonce and ciphertext>`.
//!
//! Key rotation: the new key in `INCUBASE_SECRETS_KEY`, the old one in
//! `INCUBASE_SECRETS_PREVIOUS_KEYS`; values open under either, and [`Sealing::needs_resealing`]
//! tells which stored values to seal again under the current key (done at start, see
//! `service::webhooks::reseal_stored_secrets`). A value without the prefix is a plaintext one
//! from before sealing existed: it opens as itself and is sealed at the next start.
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};

const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;
const LABEL: &[u8] = b"incubase sealed secrets v1";

/// The current key and the previous ones (newest first); empty until configured at start.
#[derive(Clone, Default)]
pub struct Sealing {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealing({} keys, hidden)", self.keys.len())
    }
}

/// Why a stored value does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsealable {
    #[error("no sealing key is configured")]
    NoKey,
    #[error("the sealed value is not well-formed")]
    Malformed,
    #[error("the sealed value opens under none of the configured keys (INCUBASE_SECRETS_KEY changed?)")]
    WrongKey,
}

fn derive(secret: &str) -> Result<[u8; 32], String> {
    // A keyed PRF over a fixed label: the configured secret is long and random (≥ 32
    // characters), the label keeps this key apart from any other use of the same text.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("cannot key HMAC-SHA256: {e}"))?;
    mac.update(LABEL);
    Ok(mac.finalize().into_bytes().into())
}

impl Sealing {
    /// `current` seals; it and every one of `previous` open.
    pub fn new(current: &str, previous: &[String]) -> Result<Self, String> {
        let mut keys = vec![derive(current)?];
        for key in previous {
            keys.push(derive(key)?);
        }
        Ok(Self { keys })
    }

    /// `plaintext` sealed under the current key for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &str) -> Result<String, Unsealable> {
        let key = self.keys.first().ok_or(Unsealable::NoKey)?;
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| Unsealable::NoKey)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: purpose.as_bytes() })
            .map_err(|_| Unsealable::Malformed)?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The plaintext of a stored value (a plaintext one from before sealing as it is), and
    /// the index of the key it opened under (`None` for plaintext).
    fn open_with(&self, purpose: &str, stored: &str) -> Result<(String, Option<usize>), Unsealable> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok((stored.to_owned(), None));
        };
        if self.keys.is_empty() {
            return Err(Unsealable::NoKey);
        }
        let bytes = STANDARD.decode(encoded).map_err(|_| Unsealable::Malformed)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Unsealable::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = Nonce::try_from(nonce).map_err(|_| Unsealable::Malformed)?;
        for (index, key) in self.keys.iter().enumerate() {
            let Ok(cipher) = Aes256Gcm::new_from_slice(key) else { continue };
            if let Ok(plain) = cipher.decrypt(&nonce, Payload { msg: sealed, aad: purpose.as_bytes() }) {
                let text = String::from_utf8(plain).map_err(|_| Unsealable::Malformed)?;
                return Ok((text, Some(index)));
            }
        }
        Err(Unsealable::WrongKey)
    }

    /// The plaintext of a stored value.
    pub fn open(&self, purpose: &str, stored: &str) -> Result<String, Unsealable> {
        self.open_with(purpose, stored).map(|(plain, _)| plain)
    }

    /// The value to store instead of `stored` when it is plaintext or sealed under a previous
    /// key; `None` when it is sealed under the current key already.
    pub fn needs_resealing(&self, purpose: &str, stored: &str) -> Result<Option<String>, Unsealable> {
        match self.open_with(purpose, stored)? {
            (_, Some(0)) => Ok(None),
            (plain, _) => self.seal(purpose, &plain).map(Some),
        }
    }
}
