//! docker's words for times and states ("Up 5 seconds (healthy)", "3 days ago"), for
//! every front-end (the API's `Status` field is the CLI's STATUS column).

use crate::record::{parse_rfc3339, ContainerState, Status};

/// docker's units.HumanDuration.
pub fn duration(secs: i64) -> String {
    let plural = |n: i64, u: &str| {
        if n == 1 {
            format!("1 {u}")
        } else {
            format!("{n} {u}s")
        }
    };
    let h = secs / 3600;
    match secs {
        s if s < 1 => "Less than a second".to_string(),
        s if s < 60 => plural(s, "second"),
        s if s / 60 == 1 => "About a minute".to_string(),
        s if s < 3600 => plural(s / 60, "minute"),
        _ if h == 1 => "About an hour".to_string(),
        _ if h < 48 => plural(h, "hour"),
        _ if h < 24 * 7 * 2 => plural(h / 24, "day"),
        _ if h < 24 * 30 * 2 => plural(h / 24 / 7, "week"),
        _ if h < 24 * 365 * 2 => plural(h / 24 / 30, "month"),
        _ => plural(h / 24 / 365, "year"),
    }
}

/// docker's "N units ago".
pub fn ago(secs: i64) -> String {
    format!("{} ago", duration(secs))
}

/// Now, in seconds since the epoch (for "N ago" of a Unix time).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since an RFC 3339 time (None when empty or unparsable).
pub fn secs_since(t: &str) -> Option<i64> {
    let t = parse_rfc3339(t)?;
    Some(
        std::time::SystemTime::now()
            .duration_since(t)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

/// docker's STATUS column.
pub fn status_text(s: &ContainerState) -> String {
    let since = |t: &str| secs_since(t).map(duration).unwrap_or_default();
    match s.status {
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Exited => {
            if s.finished_at.is_empty() {
                format!("Exited ({})", s.exit_code)
            } else {
                format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at))
            }
        }
        Status::Running | Status::Paused => {
            let mut t = format!("Up {}", since(&s.started_at));
            if s.status == Status::Paused {
                t.push_str(" (Paused)");
            } else if let Some(h) = &s.health {
                match h.status.as_str() {
                    "starting" => t.push_str(" (health: starting)"),
                    "" => {}
                    x => t.push_str(&format!(" ({x})")),
                }
            }
            t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_status() {
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(75), "About a minute ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(400 * 86400), "13 months ago");
        assert_eq!(duration(3), "3 seconds");
        assert_eq!(duration(61), "About a minute");
        let s = ContainerState {
            status: Status::Exited,
            exit_code: 3,
            finished_at: crate::record::now_rfc3339(),
            ..Default::default()
        };
        assert_eq!(status_text(&s), "Exited (3) Less than a second ago");
        assert_eq!(status_text(&ContainerState::default()), "Created");
        let s = ContainerState {
            status: Status::Running,
            started_at: crate::record::rfc3339(
                std::time::SystemTime::now() - std::time::Duration::from_secs(5),
            ),
            health: Some(crate::record::Health {
                status: "healthy".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(status_text(&s), "Up 5 seconds (healthy)");
    }
}
