//! Durations as compose-go reads them (Go's time.ParseDuration) and prints them.

use std::time::Duration;

/// Go's time.ParseDuration, for non-negative durations: "1m30s", "10s", "500ms", "1.5h",
/// "0". A bare number other than 0 is an error, as in Go. The engine's parser (docker's
/// flags read the same syntax).
pub fn parse_duration(s: &str) -> Option<Duration> {
    berth_engine::parse::duration(s)
        .ok()
        .map(|n| Duration::from_nanos(n as u64))
}

/// Go's Duration.String(): "1m30s", "500ms", "0s" (the engine's).
pub fn format_duration(d: Duration) -> String {
    berth_engine::parse::go_duration(d)
}

/// docker's RAMInBytes: "512m", "1g", "1.5GB", "100k"; a bare number is bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    berth_engine::parse::size(s).ok()
}

pub mod serde_duration {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["10", "10x", "", "s", "-1s", "1.2.3s", "1d", "ms10"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_as_go() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("12x"), None);
        assert_eq!(parse_size("m"), None);
    }
}
