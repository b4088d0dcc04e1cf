//! Cron schedules of data operations (`policy: Cron`), pure: five fields as Kubernetes CronJobs take
//! them (an optional leading seconds field too), evaluated in UTC.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use k8s_openapi::jiff::Timestamp;

pub fn parse(pattern: &str) -> Result<Cron, String> {
    CronParser::builder().seconds(Seconds::Optional).build().parse(pattern).map_err(|e| e.to_string())
}

/// The first time `pattern` matches strictly after `after`.
pub fn next_after(pattern: &str, after: Timestamp) -> Result<Timestamp, String> {
    let cron = parse(pattern)?;
    let from = chrono::DateTime::from_timestamp(after.as_second(), 0).ok_or("time out of range")?;
    let next = cron.find_next_occurrence(&from, false).map_err(|e| e.to_string())?;
    Timestamp::from_second(next.timestamp()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn five_and_six_field_patterns() {
        assert_eq!(next_after("*/5 * * * *", at("2026-01-01T00:02:30Z")), Ok(at("2026-01-01T00:05:00Z")));
        assert_eq!(next_after("0 0 * * *", at("2026-01-01T00:00:00Z")), Ok(at("2026-01-02T00:00:00Z")));
        assert_eq!(next_after("*/10 * * * * *", at("2026-01-01T00:00:01Z")), Ok(at("2026-01-01T00:00:10Z")));
        assert!(parse("not a schedule").is_err());
        assert!(parse("61 * * * *").is_err());
    }
}
