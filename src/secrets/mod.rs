//! Secrets at rest and in memory.
//!
//! * [`Secret`] holds a value that never prints, serialises or logs.
//! * [`Cipher`] seals values with AES-256-GCM: a fresh 96-bit nonce per value,
//!   the owning row's identity as associated data (a sealed value moved to
//!   another row or column fails to open), and the key id in the stored form
//!   (`v1:<key id>:<base64(nonce ‖ ciphertext)>`) so the master key can rotate.
//! * [`Cipher::fingerprint`] is a keyed hash (HMAC-SHA256 under a key derived
//!   from the master key) that identifies a provider key without revealing it.
//! * [`mask`] is the only way a secret is ever shown: `sk-…a1b2`.

mod master;

pub use master::{load_or_create_master_key, MasterKeySource};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

/// A secret value in memory. `Debug` and `Display` print `[redacted]`; there
/// is no `Serialize`. Read it with [`Secret::expose`] at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call only where it leaves the process on purpose
    /// (an HTTP header to the host, the cipher).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The masked form, safe to show.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Shows a secret as its prefix (up to the first `-`, at most 6 characters)
/// and its last four characters: `sk-…a1b2`, `admin-…9f0e`. Short values show
/// nothing but the ellipsis.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let prefix: String = match value.find('-') {
        Some(i) if i <= 6 => value[..=i].to_string(),
        _ => String::new(),
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

/// Errors from sealing and opening.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("stored secret is malformed")]
    Malformed,
    #[error("stored secret was sealed with key `{0}`, which is not loaded")]
    UnknownKey(String),
    #[error("stored secret failed authentication (wrong key, or moved to another row)")]
    Authentication,
    #[error("master key is invalid: {0}")]
    BadMasterKey(String),
    #[error("master key file: {0}")]
    Io(#[from] std::io::Error),
}

/// A 256-bit master key and its id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// Wraps raw key bytes; the id is derived from the key (first 8 hex
    /// digits of SHA-256 over a domain-separated copy), so it is stable and
    /// reveals nothing usable.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"relay-manager/key-id/v1");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..4]);
        MasterKey { id, bytes }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses 64 hex digits or standard base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        let raw = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| SecretError::BadMasterKey(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| {
                    SecretError::BadMasterKey("expected 64 hex digits or base64 of 32 bytes".into())
                })?
        };
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| SecretError::BadMasterKey("the key must be exactly 32 bytes".into()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as 64 hex digits, for writing the key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Seals and opens secrets; computes fingerprints.
#[derive(Clone)]
pub struct Cipher {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
    fingerprint_key: [u8; 32],
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cipher(current={})", self.current)
    }
}

const SEALED_PREFIX: &str = "v1";

impl Cipher {
    /// A cipher that seals with `current` and can also open values sealed
    /// with any of `previous` (key rotation).
    pub fn new(current: &MasterKey, previous: &[MasterKey]) -> Self {
        let mut keys = HashMap::new();
        for k in previous.iter().chain(std::iter::once(current)) {
            keys.insert(
                k.id.clone(),
                Aes256Gcm::new_from_slice(&k.bytes).expect("32-byte key"),
            );
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&current.bytes).expect("any length");
        mac.update(b"relay-manager/fingerprint/v1");
        let fingerprint_key: [u8; 32] = mac.finalize().into_bytes().into();
        Cipher {
            current: current.id.clone(),
            keys,
            fingerprint_key,
        }
    }

    /// Seals `plain`, bound to `aad` (the row identity, e.g. `host/<uid>/admin_secret`).
    pub fn seal(&self, plain: &Secret, aad: &str) -> String {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = key
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.expose().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(12 + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        format!("{SEALED_PREFIX}:{}:{}", self.current, B64.encode(blob))
    }

    /// Opens a value sealed by [`Cipher::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Secret, SecretError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(SEALED_PREFIX), Some(kid), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretError::Malformed);
        };
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| SecretError::UnknownKey(kid.to_string()))?;
        let blob = B64.decode(body).map_err(|_| SecretError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let plain = key
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Authentication)?;
        String::from_utf8(plain)
            .map(Secret)
            .map_err(|_| SecretError::Malformed)
    }

    /// The key id that new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// The fingerprint key in use, as a secret (hex) to keep in the keyring.
    pub fn fingerprint_key(&self) -> Secret {
        Secret(hex::encode(self.fingerprint_key))
    }

    /// Uses a stored fingerprint key (hex of 32 bytes) instead of the one
    /// derived from the current master key, so fingerprints stay the same
    /// when the master key rotates.
    pub fn with_fingerprint_key(mut self, key: &Secret) -> Result<Self, SecretError> {
        let raw = hex::decode(key.expose()).map_err(|_| SecretError::Malformed)?;
        self.fingerprint_key = raw.try_into().map_err(|_| SecretError::Malformed)?;
        Ok(self)
    }

    /// Whether `sealed` was sealed with a key other than the current one.
    pub fn sealed_with_previous(&self, sealed: &str) -> bool {
        sealed
            .split(':')
            .nth(1)
            .is_some_and(|kid| kid != self.current)
    }

    /// A keyed fingerprint of a secret (`fp1:` + 32 hex digits). Equal keys
    /// give equal fingerprints under the same master key; without the master
    /// key the fingerprint cannot be tested against guesses.
    pub fn fingerprint(&self, value: &Secret) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key).expect("any length");
        mac.update(value.expose().trim().as_bytes());
        format!("fp1:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
    }
}

/// A random token of `bytes` bytes as lowercase hex (setup tokens, row uids).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether two byte strings are equal, in time that depends only on their
/// lengths (for comparing presented tokens with a configured one).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a string as hex (for storing one-time tokens by hash).
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new(&MasterKey::generate(), &[])
    }

    #[test]
    fn seal_then_open_round_trips_and_never_contains_the_plaintext() {
        let c = cipher();
        let s = Secret::new("sk-canary-0123456789abcdef");
        let sealed = c.seal(&s, "host/abc/admin_secret");
        assert!(sealed.starts_with(&format!("v1:{}:", c.current_key_id())));
        assert!(!sealed.contains("canary"));
        assert_eq!(c.open(&sealed, "host/abc/admin_secret").unwrap(), s);
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let c = cipher();
        let s = Secret::new("same value");
        assert_ne!(c.seal(&s, "a"), c.seal(&s, "a"));
    }

    #[test]
    fn a_value_moved_to_another_row_fails_to_open() {
        let c = cipher();
        let sealed = c.seal(&Secret::new("x"), "host/1/admin_secret");
        assert!(matches!(
            c.open(&sealed, "host/2/admin_secret"),
            Err(SecretError::Authentication)
        ));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = MasterKey::generate();
        let sealed = Cipher::new(&old, &[]).seal(&Secret::new("v"), "r");
        let new = MasterKey::generate();
        let rotated = Cipher::new(&new, &[old]);
        assert_eq!(rotated.open(&sealed, "r").unwrap().expose(), "v");
        assert!(rotated.seal(&Secret::new("v"), "r").contains(new.id()));
        assert!(matches!(
            Cipher::new(&new, &[]).open(&sealed, "r"),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampered_or_malformed_values_are_refused() {
        let c = cipher();
        let mut sealed = c.seal(&Secret::new("value"), "r");
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(c.open(&sealed, "r").is_err());
        assert!(matches!(c.open("plain", "r"), Err(SecretError::Malformed)));
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let k = MasterKey::generate();
        let a = Cipher::new(&k, &[]);
        let b = Cipher::new(&k, &[]);
        let other = cipher();
        let s = Secret::new("sk-abc");
        assert_eq!(a.fingerprint(&s), b.fingerprint(&s));
        assert_eq!(a.fingerprint(&s), a.fingerprint(&Secret::new(" sk-abc\n")));
        assert_ne!(a.fingerprint(&s), other.fingerprint(&s));
        assert!(a.fingerprint(&s).starts_with("fp1:"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-canary-secret-value");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
    }

    #[test]
    fn masks_show_prefix_and_last_four_only() {
        assert_eq!(mask("sk-0123456789abcdefa1b2"), "sk-…a1b2");
        assert_eq!(
            mask("admin-0123456789abcdef0123456789abcdef9f0e"),
            "admin-…9f0e"
        );
        assert_eq!(mask("0123456789abcdefwxyz"), "…wxyz");
        assert_eq!(mask("short"), "…");
    }

    #[test]
    fn master_keys_parse_from_hex_and_base64_only_at_32_bytes() {
        let k = MasterKey::generate();
        assert_eq!(MasterKey::parse(&k.to_hex()).unwrap().id(), k.id());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(MasterKey::parse(&b64).is_ok());
        assert!(MasterKey::parse("abcd").is_err());
    }
}
