//! Wire types: the JSON shapes of the OpenAI and Ollama APIs, and their conversion into the
//! engine's domain types. Only this crate knows them.

pub mod admin;
pub mod ollama;
pub mod openai;
pub mod schema;

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

/// Formats Unix milliseconds as RFC 3339 UTC without a date library (civil-from-days).
pub fn rfc3339_from_unix_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let millis_part = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3600,
        (second_of_day % 3600) / 60,
        second_of_day % 60,
    );
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis_part:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(
            super::rfc3339_from_unix_millis(0),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            super::rfc3339_from_unix_millis(1_795_000_000_123),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(
            super::rfc3339_from_unix_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
