//! Signatures: ed25519 over what a plugin is — a fixed context, the sha256 of its manifest's
//! text and the sha256 of its component — so a one-bit change to either is refused. Publishers
//! make a key pair with `hearth plugins keygen` and sign with `hearth plugins sign`; servers
//! trust public keys listed in `plugins.trusted_keys`.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::PluginError;

/// Names what the signature is over, so it cannot be taken for another kind of ed25519
/// signature by the same key.
const CONTEXT: &str = "hearth-plugin-signature-v1";

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes signed for a manifest and a component (given by its sha256, hex).
pub fn signed_message(manifest_text: &str, component_sha256: &str) -> Vec<u8> {
    format!(
        "{CONTEXT}\nmanifest {}\ncomponent {component_sha256}\n",
        crate::sha256_hex(manifest_text.as_bytes())
    )
    .into_bytes()
}

/// A new key pair from 32 random bytes: (secret key, public key), both base64.
pub fn key_pair(seed: [u8; 32]) -> (String, String) {
    let signing = SigningKey::from_bytes(&seed);
    (
        base64_encode(&signing.to_bytes()),
        base64_encode(signing.verifying_key().as_bytes()),
    )
}

/// Signs a manifest and a component with a secret key (base64); the signature, base64.
pub fn sign(
    secret_key: &str,
    manifest_text: &str,
    component: &[u8],
) -> Result<String, PluginError> {
    let seed: [u8; 32] = base64_decode(secret_key)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            PluginError::InvalidSignature("a secret key is 32 bytes in base64".to_string())
        })?;
    let signing = SigningKey::from_bytes(&seed);
    let message = signed_message(manifest_text, &crate::sha256_hex(component));
    Ok(base64_encode(&signing.sign(&message).to_bytes()))
}

/// The public keys signatures are checked against.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl TrustedKeys {
    /// Parses base64 public keys; the error names the one that is not a key.
    pub fn parse(keys: &[String]) -> Result<TrustedKeys, PluginError> {
        let mut parsed = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes: [u8; 32] = base64_decode(key)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    PluginError::InvalidSignature(format!(
                        "trusted key {key:?} is not an ed25519 public key (32 bytes in base64)"
                    ))
                })?;
            let verifying = VerifyingKey::from_bytes(&bytes).map_err(|error| {
                PluginError::InvalidSignature(format!("trusted key {key:?}: {error}"))
            })?;
            parsed.push((key.trim().to_string(), verifying));
        }
        Ok(TrustedKeys { keys: parsed })
    }

    /// The trusted key (base64) whose signature `signature` (base64) is over the manifest and
    /// the component.
    pub fn verify(
        &self,
        signature: &str,
        manifest_text: &str,
        component_sha256: &str,
    ) -> Result<String, PluginError> {
        let bytes: [u8; 64] = base64_decode(signature)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                PluginError::InvalidSignature("a signature is 64 bytes in base64".to_string())
            })?;
        let signature = Signature::from_bytes(&bytes);
        let message = signed_message(manifest_text, component_sha256);
        self.keys
            .iter()
            .find(|(_, key)| key.verify(&message, &signature).is_ok())
            .map(|(text, _)| text.clone())
            .ok_or_else(|| {
                PluginError::InvalidSignature(
                    "the signature does not verify against any key in plugins.trusted_keys: the \
                     manifest or the component changed since it was signed, or its signer is not \
                     trusted"
                        .to_string(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let (secret, public) = key_pair([7; 32]);
        let trusted = TrustedKeys::parse(std::slice::from_ref(&public)).unwrap();
        let component = b"\0asm component bytes".to_vec();
        let manifest = "name = \"echo\"\nversion = \"0.1.0\"\n";
        let signature = sign(&secret, manifest, &component).unwrap();
        let sha = crate::sha256_hex(&component);
        assert_eq!(trusted.verify(&signature, manifest, &sha).unwrap(), public);

        // One bit of the component, one character of the manifest, one bit of the signature.
        let mut flipped = component.clone();
        flipped[3] ^= 1;
        assert!(
            trusted
                .verify(&signature, manifest, &crate::sha256_hex(&flipped))
                .is_err()
        );
        assert!(
            trusted
                .verify(&signature, &manifest.replace("0.1.0", "0.1.1"), &sha)
                .is_err()
        );
        let mut bytes = base64_decode(&signature).unwrap();
        bytes[10] ^= 1;
        assert!(
            trusted
                .verify(&base64_encode(&bytes), manifest, &sha)
                .is_err()
        );
        // Another signer's key is not trusted.
        let (other_secret, _) = key_pair([8; 32]);
        let other = sign(&other_secret, manifest, &component).unwrap();
        assert!(trusted.verify(&other, manifest, &sha).is_err());
        assert!(TrustedKeys::parse(&["not a key".to_string()]).is_err());
    }
}
