//! Bearer JWTs from an OIDC issuer, as an alternative to API keys. The issuer's signing keys
//! (its JWKS, found through its discovery document unless given) are fetched at start, kept
//! in memory, refreshed periodically and when a token names a key not seen yet. A token is
//! accepted when its signature verifies with one of those keys, with an asymmetric algorithm
//! of that key's family (never HMAC: a public key set must not be usable as a shared secret),
//! and its issuer, audience, expiry and not-before hold. Claims name the tenant (which must
//! exist) and the role.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::authenticator::{AuthError, Authenticator};
use crate::principal::{Limits, Principal, Role};

/// How tokens are checked and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The `iss` tokens must carry, e.g. `https://login.example.com/realms/acme`.
    pub issuer: String,
    /// The `aud` tokens must carry (this server's client id).
    pub audience: String,
    /// Where the keys are; `None`: `jwks_uri` of `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The claim naming the tenant (an existing tenant's name).
    pub tenant_claim: String,
    /// The claim naming the role (`admin`, `member`, `reader`, or a list of them: the highest
    /// counts); `member` when absent.
    pub role_claim: String,
}

struct SigningKey {
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

/// The verifier of one issuer's tokens. Share it as `Arc<OidcVerifier>`.
pub struct OidcVerifier {
    settings: OidcSettings,
    keys: RwLock<HashMap<String, Arc<SigningKey>>>,
    client: reqwest::Client,
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// A token's key may be fetched again at most this often, however many unknown keys arrive.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Whether a bearer credential is a JWT rather than an API key: three base64url parts.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token.starts_with("ey")
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

fn algorithms_for(parameters: &AlgorithmParameters) -> Option<&'static [Algorithm]> {
    match parameters {
        AlgorithmParameters::RSA(_) => Some(&[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ]),
        AlgorithmParameters::EllipticCurve(_) => Some(&[Algorithm::ES256, Algorithm::ES384]),
        AlgorithmParameters::OctetKeyPair(_) => Some(&[Algorithm::EdDSA]),
        // A symmetric key in a public key set would let anyone who read it sign tokens.
        AlgorithmParameters::OctetKey(_) => None,
    }
}

impl OidcVerifier {
    /// A verifier for `settings`; call [`OidcVerifier::refresh`] to fetch the keys.
    pub fn new(settings: OidcSettings) -> Arc<OidcVerifier> {
        Arc::new(OidcVerifier {
            settings,
            keys: RwLock::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            last_fetch: Mutex::new(None),
        })
    }

    async fn jwks_url(&self) -> Result<String, String> {
        if let Some(url) = &self.settings.jwks_url {
            return Ok(url.clone());
        }
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let document: serde_json::Value = self
            .client
            .get(&discovery)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("cannot read {discovery}: {error}"))?
            .json()
            .await
            .map_err(|error| format!("{discovery} is not JSON: {error}"))?;
        document["jwks_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{discovery} names no jwks_uri"))
    }

    /// Fetches the issuer's keys; returns how many usable ones it has.
    pub async fn refresh(&self) -> Result<usize, String> {
        *self
            .last_fetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        let url = self.jwks_url().await?;
        let set: JwkSet = self
            .client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("cannot read the keys at {url}: {error}"))?
            .json()
            .await
            .map_err(|error| format!("the keys at {url} are not a JWK set: {error}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(algorithms) = algorithms_for(&jwk.algorithm) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, Arc::new(SigningKey { key, algorithms }));
        }
        let count = keys.len();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(count)
    }

    fn refetch_soon(self: &Arc<Self>) {
        let due = self
            .last_fetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= REFETCH_AT_MOST_EVERY);
        if !due || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let verifier = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = verifier.refresh().await {
                tracing::warn!(%error, "cannot refresh the OIDC issuer's keys");
            }
        });
    }

    /// Refreshes the keys every `interval` until the verifier is dropped.
    pub fn spawn_refresher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(verifier) = verifier.upgrade() else {
                    return;
                };
                if let Err(error) = verifier.refresh().await {
                    tracing::warn!(%error, "cannot refresh the OIDC issuer's keys; keeping the current ones");
                }
            }
        })
    }

    /// Checks a bearer JWT and says who it is: its tenant (which must exist among
    /// `authenticator`'s tenants) and role, with the tenant's limits.
    pub fn verify(
        self: &Arc<Self>,
        token: &str,
        authenticator: &Authenticator,
        key_defaults: Limits,
    ) -> Result<Principal, AuthError> {
        let invalid = |reason: String| AuthError::InvalidToken { reason };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| invalid(format!("not a JWT: {error}")))?;
        let kid = header.kid.clone().unwrap_or_default();
        let key = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kid)
            .cloned();
        let Some(key) = key else {
            self.refetch_soon();
            return Err(invalid(format!(
                "signed with key {kid:?}, which the issuer does not list (yet)"
            )));
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} does not fit the issuer's key",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|error| invalid(error.to_string()))?
            .claims;
        let subject = claims["sub"].as_str().unwrap_or_default();
        let tenant_name = claims[&self.settings.tenant_claim]
            .as_str()
            .ok_or_else(|| {
                invalid(format!(
                    "the token has no `{}` claim naming a tenant",
                    self.settings.tenant_claim
                ))
            })?;
        let (tenant_id, tenant_limits) =
            authenticator
                .tenant_by_name(tenant_name)
                .ok_or_else(|| AuthError::UnknownTenant {
                    name: tenant_name.to_string(),
                })?;
        let role = match &claims[&self.settings.role_claim] {
            serde_json::Value::String(role) => Role::parse(role),
            serde_json::Value::Array(roles) => roles
                .iter()
                .filter_map(|role| role.as_str().and_then(Role::parse))
                .max(),
            _ => Some(Role::Member),
        }
        .ok_or_else(|| {
            invalid(format!(
                "the `{}` claim names no role of admin, member or reader",
                self.settings.role_claim
            ))
        })?;
        let identity: String = format!("oidc:{subject}").chars().take(64).collect();
        Ok(Principal {
            key_id: identity.clone(),
            key_prefix: identity,
            tenant_id: Some(tenant_id),
            tenant_name: Some(tenant_name.to_string()),
            user_id: None,
            role,
            scopes: Vec::new(),
            key_limits: key_defaults,
            tenant_limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn jwts_are_told_apart_from_api_keys() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt(
            "hk_0123456789abcdef0123456789abcdef0123456789abcdef"
        ));
        assert!(!looks_like_jwt("eyJ.only-two"));
    }
}
