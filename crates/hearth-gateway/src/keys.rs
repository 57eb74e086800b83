//! API keys: `hk_` and 48 hex characters (about 184 random bits). Only the sha256 of a key is stored;
//! the key itself is shown once, when made. The first 11 characters are its visible prefix, for
//! people to tell keys apart in listings and logs.
//!
//! sha256 rather than a password hash (Argon2) is deliberate: the keys are long random strings,
//! not guessable passwords, so a fast hash loses nothing, and every request checks one.

use sha2::{Digest, Sha256};

/// Every key starts with this, so that secret scanners and people recognise it.
pub const KEY_PREFIX: &str = "hk_";
/// Characters of a key kept visible: `hk_` and 8 more.
pub const VISIBLE_PREFIX_LEN: usize = 11;

/// A freshly made key: the secret to show once, and what is stored of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    pub secret: String,
    pub prefix: String,
    pub sha256: String,
}

pub fn generate() -> NewSecret {
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    // A v4 UUID has 122 random bits in its 32 hex digits; 48 digits of two of them keep 184.
    let secret = format!("{KEY_PREFIX}{}", &random[..48]);
    NewSecret {
        prefix: visible_prefix(&secret).to_owned(),
        sha256: hash(&secret),
        secret,
    }
}

/// The hex sha256 of a presented key, as stored.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The visible part of a key (or the whole text, when it is shorter).
pub fn visible_prefix(secret: &str) -> &str {
    secret.get(..VISIBLE_PREFIX_LEN).unwrap_or(secret)
}

/// Whether `text` has the shape of a Hearth key (it may still be unknown).
pub fn looks_like_key(text: &str) -> bool {
    text.len() == KEY_PREFIX.len() + 48
        && text.starts_with(KEY_PREFIX)
        && text[KEY_PREFIX.len()..]
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_well_formed_and_hashed() {
        let first = generate();
        let second = generate();
        assert_ne!(first.secret, second.secret);
        assert!(looks_like_key(&first.secret), "{}", first.secret);
        assert_eq!(first.prefix, &first.secret[..11]);
        assert!(first.prefix.starts_with("hk_"));
        assert_eq!(first.sha256, hash(&first.secret));
        assert_eq!(first.sha256.len(), 64);
        assert!(!first.sha256.contains(&first.secret[3..]));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
