//! What a key's scopes let it do with topics. A scope word `publish:<pattern>` restricts the
//! key's publishing to topics the patterns match, and `subscribe:<pattern>` its subscribing
//! (SSE, the WebSocket, consumers it fetches from, webhooks it registers) to patterns those
//! cover. A key with no scope of a kind is not restricted in it: its role decides, as for
//! every key without scopes.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_events::{Pattern, Topic};

use crate::error::ApiError;
use crate::gate::Caller;

/// The topic restrictions of the request's key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicAccess {
    publish: Option<Vec<Pattern>>,
    subscribe: Option<Vec<Pattern>>,
}

impl TopicAccess {
    /// The restrictions in a key's scope words; a pattern that does not parse allows nothing.
    pub fn of_scopes(scopes: &[String]) -> TopicAccess {
        let mut access = TopicAccess::default();
        for scope in scopes {
            let (kind, pattern) = match scope.split_once(':') {
                Some((kind @ ("publish" | "subscribe"), pattern)) => (kind, pattern),
                _ => continue,
            };
            let list = if kind == "publish" {
                access.publish.get_or_insert_with(Vec::new)
            } else {
                access.subscribe.get_or_insert_with(Vec::new)
            };
            if let Ok(pattern) = Pattern::parse(pattern) {
                list.push(pattern);
            }
        }
        access
    }

    fn refused(kind: &str, allowed: &[Pattern], what: &str, field: &str) -> ApiError {
        let allowed: Vec<&str> = allowed.iter().map(Pattern::as_str).collect();
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this key may {kind} only {} `{}`; `{what}` is outside them",
                if kind == "publish" {
                    "to topics matching"
                } else {
                    "to patterns within"
                },
                allowed.join("`, `")
            ),
        )
        .with_param(field)
    }

    /// Whether the key may publish to `topic` (a malformed topic is left to the publish to
    /// refuse, naming it).
    pub fn check_publish(&self, topic: &str, field: &str) -> Result<(), ApiError> {
        let Some(allowed) = &self.publish else {
            return Ok(());
        };
        let Ok(parsed) = Topic::parse(topic) else {
            return Ok(());
        };
        if allowed.iter().any(|pattern| pattern.matches(&parsed)) {
            return Ok(());
        }
        Err(Self::refused("publish", allowed, topic, field))
    }

    /// Whether the key may subscribe to every one of `patterns`.
    pub fn check_subscribe<'a>(
        &self,
        patterns: impl IntoIterator<Item = &'a str>,
        field: &str,
    ) -> Result<(), ApiError> {
        let Some(allowed) = &self.subscribe else {
            return Ok(());
        };
        for pattern in patterns {
            let Ok(parsed) = Pattern::parse(pattern) else {
                continue;
            };
            if !allowed.iter().any(|own| own.covers(&parsed)) {
                return Err(Self::refused("subscribe", allowed, pattern, field));
            }
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TopicAccess {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<Caller>() {
            Some(Caller::Key(principal)) => TopicAccess::of_scopes(&principal.scopes),
            _ => TopicAccess::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_restrict_publishing_and_subscribing_by_pattern() {
        let access = TopicAccess::of_scopes(&[
            "models".to_string(),
            "publish:orders.*".to_string(),
            "subscribe:orders.>".to_string(),
        ]);
        assert!(access.check_publish("orders.created", "topic").is_ok());
        let refused = access.check_publish("users.created", "topic").unwrap_err();
        assert_eq!(
            (refused.status, refused.param.as_deref()),
            (StatusCode::FORBIDDEN, Some("topic"))
        );
        assert!(access.check_subscribe(["orders.*.paid"], "topics").is_ok());
        assert!(access.check_subscribe(["orders.>", ">"], "topics").is_err());
        // No scopes of a kind: the role decides.
        let open = TopicAccess::of_scopes(&["models".to_string()]);
        assert!(open.check_publish("anything.at.all", "topic").is_ok());
        assert!(open.check_subscribe([">"], "topics").is_ok());
        // A publish-only restriction leaves subscribing open.
        let publish_only = TopicAccess::of_scopes(&["publish:a.b".to_string()]);
        assert!(publish_only.check_subscribe([">"], "topics").is_ok());
        assert!(publish_only.check_publish("a.c", "topic").is_err());
    }
}
