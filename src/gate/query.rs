//! The attach's query parameters, read as the daemon reads them.

use serde::Serialize;

use crate::http::query::{bool_value, parse_query};

/// What an attach asks for (`POST /containers/{id}/attach?…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttachQuery {
    /// Write the client's bytes to PID 1's stdin (only if the container keeps stdin open).
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
    /// Replay the container's log first.
    pub logs: bool,
    /// Stay attached to the live streams.
    pub stream: bool,
    /// The keys that detach (the daemon checks their syntax); `None`: the default.
    pub detach_keys: Option<String>,
}

impl AttachQuery {
    /// Reads the attach parameters of a raw query as the daemon does; an error
    /// is what the daemon would refuse with 400.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let form = parse_query(query.unwrap_or_default())?;
        let first = |key: &str| form.get(key).and_then(|values| values.first());
        let value = |key: &str| first(key).map(String::as_str).unwrap_or_default();
        Ok(AttachQuery {
            stdin: bool_value(value("stdin")),
            stdout: bool_value(value("stdout")),
            stderr: bool_value(value("stderr")),
            logs: bool_value(value("logs")),
            stream: bool_value(value("stream")),
            detach_keys: first("detachKeys").filter(|keys| !keys.is_empty()).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> AttachQuery {
        AttachQuery::parse(Some(query)).expect("parses")
    }

    #[test]
    fn booleans_are_false_only_for_the_daemons_false_words() {
        for falsy in ["", "0", "no", "false", "none", "FaLsE", "%20no%20", "+0", "NONE"] {
            assert!(!parse(&format!("stdin={falsy}")).stdin, "{falsy:?}");
        }
        for truthy in ["1", "2", "on", "yes", "TRUE", "x", "-1"] {
            assert!(parse(&format!("stdin={truthy}")).stdin, "{truthy:?}");
        }
        assert!(!parse("stdout").stdout, "a key without a value is empty, so false");
        assert!(!parse("Stdout=1").stdout, "keys are case-sensitive");
        assert!(parse("std%6fut=1").stdout, "keys are unescaped");
    }

    #[test]
    fn the_first_value_of_a_repeated_key_wins() {
        assert!(!parse("stdout=0&stdout=1").stdout);
        assert!(parse("stdout=1&stdout=0").stdout);
    }

    #[test]
    fn what_the_daemon_refuses_is_refused() {
        assert!(AttachQuery::parse(Some("stream=1;stdin=1")).is_err());
        assert!(AttachQuery::parse(Some("stream=1&detachKeys=a;b")).is_err());
        assert!(AttachQuery::parse(Some("stream=%zz")).is_err());
        assert!(AttachQuery::parse(Some("stream=%4")).is_err());
    }

    #[test]
    fn the_clis_query_reads_as_it_means() {
        let q = parse("stderr=1&stdin=1&stdout=1&stream=1&detachKeys=ctrl-a%2Cx");
        assert_eq!(
            q,
            AttachQuery {
                stdin: true,
                stdout: true,
                stderr: true,
                logs: false,
                stream: true,
                detach_keys: Some("ctrl-a,x".into())
            }
        );
        assert_eq!(AttachQuery::parse(None), Ok(AttachQuery::default()));
    }
}
