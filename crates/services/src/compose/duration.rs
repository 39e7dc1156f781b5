//! Durations as compose-go reads them (Go's time.ParseDuration) and prints them.

use std::time::Duration;

/// Go's time.ParseDuration, for non-negative durations: "1m30s", "10s", "500ms", "1.5h",
/// "0". A bare number other than 0 is an error, as in Go.
pub fn parse_duration(s: &str) -> Option<Duration> {
    todo!("{s}")
}

/// Go's Duration.String(): "1m30s", "500ms", "0s".
pub fn format_duration(d: Duration) -> String {
    todo!("{d:?}")
}

pub mod serde_duration {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?}")))
    }
}

pub mod serde_duration_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_duration(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?}"))),
        }
    }
}
