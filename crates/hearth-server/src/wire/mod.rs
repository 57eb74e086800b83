//! Wire types: the JSON shapes of the OpenAI and Ollama APIs, and their conversion into the
//! engine's domain types. Only this crate knows them.

pub mod admin;
pub mod consumers;
pub mod conversation_memory;
pub mod events;
pub mod experiments;
pub mod files;
pub mod flags;
pub mod graphs;
pub mod jobs;
pub mod memory;
pub mod ollama;
pub mod openai;
pub mod plugins;
pub mod prompts;
pub mod responses;
pub mod schema;
pub mod vector_stores;
pub mod webhooks;

use serde::{Deserialize, Deserializer};

/// A field that accepts one string or a list of strings (`stop`, `input`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany(pub Vec<String>);

impl utoipa::PartialSchema for OneOrMany {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::one_or_many(schema::string(), None).into()
    }
}

impl utoipa::ToSchema for OneOrMany {}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Shape::deserialize(deserializer)? {
            Shape::One(text) => OneOrMany(vec![text]),
            Shape::Many(items) => OneOrMany(items),
        })
    }
}

/// Integers as JSON Schema counts them: `5` and `5.0` alike, within the range of the format
/// the document gives them (`int32` for `u32` fields, `int64` for the others). serde's own
/// integers refuse `5.0`, which JavaScript clients and schema-driven tools send; and a `u64`
/// past `i64::MAX` would pass serde but not the document (nor the store's integer columns).
/// For `Option` fields, with `#[serde(default, deserialize_with = "...")]`.
/// A body read into the domain type that keeps the same JSON shape (a flag's or an
/// experiment's definition): `body` serialized without its `name_field` (which the path or the
/// service takes), a field the domain cannot read named in the 400 when it is one of `fields`.
pub fn into_domain<T: serde::de::DeserializeOwned>(
    body: &impl serde::Serialize,
    name_field: &str,
    fields: &[&'static str],
    what: &str,
) -> Result<T, crate::error::ApiError> {
    let mut value = serde_json::to_value(body).expect("a wire body serializes");
    if let Some(object) = value.as_object_mut() {
        object.remove(name_field);
    }
    serde_json::from_value(value).map_err(|error| {
        let message = error.to_string();
        let field = fields
            .iter()
            .copied()
            .find(|field| message.contains(field))
            .unwrap_or("body");
        crate::error::ApiError::bad_request(format!("{what} cannot be read: {message}"))
            .with_param(field)
    })
}

pub mod integer {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, Unexpected, Visitor};

    struct Integral {
        min: i64,
        max: i64,
    }

    impl Integral {
        fn check<E: de::Error>(&self, value: i64, shown: Unexpected) -> Result<Option<i64>, E> {
            if (self.min..=self.max).contains(&value) {
                Ok(Some(value))
            } else {
                Err(E::invalid_value(shown, self))
            }
        }
    }

    impl<'de> Visitor<'de> for Integral {
        type Value = Option<i64>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            write!(formatter, "an integer from {} to {}", self.min, self.max)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            self.check(value, Unexpected::Signed(value))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            match i64::try_from(value) {
                Ok(signed) => self.check(signed, Unexpected::Unsigned(value)),
                Err(_) => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
            }
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            // Both bounds are exact in f64 (-2^63, 2^31 - 1, 2^63 - 1 rounds up to 2^63).
            let whole =
                value.fract() == 0.0 && value >= self.min as f64 && value < self.max as f64 + 1.0;
            if whole {
                self.check(value as i64, Unexpected::Float(value))
            } else {
                Err(E::invalid_value(Unexpected::Float(value), &self))
            }
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    fn integral<'de, D, T>(deserializer: D, min: i64, max: i64) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        let Some(value) = deserializer.deserialize_option(Integral { min, max })? else {
            return Ok(None);
        };
        T::try_from(value).map(Some).map_err(|_| {
            de::Error::invalid_value(Unexpected::Signed(value), &"a non-negative integer")
        })
    }

    /// A `u32` (or `i32`) field, documented as `int32`.
    pub fn int32<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        integral(deserializer, i64::from(i32::MIN), i64::from(i32::MAX))
    }

    /// A `u64` or `i64` field, documented as `int64`.
    pub fn int64<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        integral(deserializer, i64::MIN, i64::MAX)
    }
}

/// Folds a client's 64-bit seed into llama.cpp's 32-bit one: distinct seeds stay distinct in
/// practice, and the same seed always gives the same result.
pub fn fold_seed(seed: i64) -> u32 {
    (seed as u64 ^ (seed as u64 >> 32)) as u32
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// An RFC 3339 timestamp (UTC, nanoseconds) as Ollama writes `created_at`.
pub fn rfc3339_now() -> String {
    rfc3339_from_unix_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0),
    )
}

pub use hearth_time::rfc3339_from_unix_millis;

#[cfg(test)]
mod tests {
    #[test]
    fn integers_are_read_as_json_schema_counts_them_within_their_documented_format() {
        #[derive(serde::Deserialize)]
        struct Fields {
            #[serde(default, deserialize_with = "super::integer::int32")]
            count: Option<u32>,
            #[serde(default, deserialize_with = "super::integer::int64")]
            limit: Option<u64>,
            #[serde(default, deserialize_with = "super::integer::int64")]
            seed: Option<i64>,
        }
        let read = |json: &str| {
            serde_json::from_str::<Fields>(json)
                .map(|fields| (fields.count, fields.limit, fields.seed))
        };
        assert_eq!(read("{}").expect("absent"), (None, None, None));
        assert_eq!(
            read(r#"{"count": null, "limit": null, "seed": null}"#).expect("null"),
            (None, None, None)
        );
        assert_eq!(
            read(r#"{"count": 64.0, "limit": 1e3, "seed": -7.0}"#).expect("whole floats"),
            (Some(64), Some(1000), Some(-7))
        );
        assert_eq!(
            read(r#"{"count": 2147483647, "limit": 9223372036854775807, "seed": -9223372036854775808}"#)
                .expect("bounds"),
            (Some(i32::MAX as u32), Some(i64::MAX as u64), Some(i64::MIN))
        );
        for refused in [
            r#"{"count": 1.5}"#,
            r#"{"count": -1}"#,
            r#"{"count": 2147483648}"#,
            r#"{"limit": 9223372036854775808}"#,
            r#"{"limit": 9223372036854775808.0}"#,
            r#"{"seed": 1e19}"#,
            r#"{"count": "5"}"#,
            r#"{"count": true}"#,
        ] {
            assert!(read(refused).is_err(), "{refused} was read");
        }
    }
}
