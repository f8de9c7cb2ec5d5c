//! The body of `POST /exec/{id}/start`, decoded as the daemon decodes it.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

use super::gojson::{self, Decoded, Ignored, UintPair};

/// The daemon's `ExecStartCheck`: whether to detach, and how to frame the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StartConfig {
    /// `true`: the daemon answers a plain 200 and the process runs unattached.
    #[serde(rename = "Detach")]
    pub detach: bool,
    /// `true`: the stream is raw; otherwise it carries 8-byte-header frames.
    #[serde(rename = "Tty")]
    pub tty: bool,
    /// Initial terminal size `[height, width]`, when given.
    #[serde(rename = "ConsoleSize", skip_serializing_if = "Option::is_none")]
    pub console_size: Option<UintPair>,
    /// Podman's initial terminal height (`h`, a Go `uint16`); Docker ignores it.
    #[serde(rename = "h", skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    /// Podman's initial terminal width (`w`); Docker ignores it.
    #[serde(rename = "w", skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
}

impl StartConfig {
    /// Decodes a start body. An empty body or `null` is a default (attached)
    /// start; unknown keys are skipped (and listed), wrong types refused.
    pub fn decode(body: &[u8]) -> Result<Decoded<Self>, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Decoded::default());
        }
        let config: Option<StartBody> = serde_json::from_slice(body)?;
        Ok(config.map(|c| c.0).unwrap_or_default())
    }
}

/// A start body being decoded: the config and the keys it skipped.
struct StartBody(Decoded<StartConfig>);

impl<'de> serde::Deserialize<'de> for StartBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StartVisitor;
        impl<'de> Visitor<'de> for StartVisitor {
            type Value = StartBody;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exec start object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StartBody, A::Error> {
                let mut config = StartConfig::default();
                let mut ignored = Ignored::default();
                while let Some(key) = map.next_key::<String>()? {
                    if gojson::key_matches(&key, "Detach") {
                        gojson::keep_unless_null(&mut map, &mut config.detach)?;
                    } else if gojson::key_matches(&key, "Tty") {
                        gojson::keep_unless_null(&mut map, &mut config.tty)?;
                    } else if gojson::key_matches(&key, "ConsoleSize") {
                        config.console_size = map.next_value::<Option<UintPair>>()?;
                    } else if gojson::key_matches(&key, "h") {
                        terminal_side(&mut map, &key, &mut config.height, &mut ignored)?;
                    } else if gojson::key_matches(&key, "w") {
                        terminal_side(&mut map, &key, &mut config.width, &mut ignored)?;
                    } else {
                        ignored.skip(&mut map, &key)?;
                    }
                }
                Ok(StartBody(Decoded { value: config, ignored }))
            }
        }
        deserializer.deserialize_map(StartVisitor)
    }
}

/// Podman's `h`/`w`: kept (and forwarded) when they are what Podman reads, a
/// `uint16`; `null` leaves them as they were. Anything else Podman would refuse
/// and Docker ignores: it is not forwarded, only listed.
fn terminal_side<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
    side: &mut Option<u16>,
    ignored: &mut Ignored,
) -> Result<(), A::Error> {
    match map.next_value::<serde_json::Value>()? {
        serde_json::Value::Null => {}
        value => match value.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => *side = Some(n),
            None => ignored.note(key),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> StartConfig {
        decode_all(text).value
    }

    fn decode_all(text: &str) -> Decoded<StartConfig> {
        StartConfig::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn what_the_cli_sends() {
        assert_eq!(decode(r#"{"Detach":false,"Tty":true}"#), StartConfig { tty: true, ..Default::default() });
        assert!(decode(r#"{"Detach":true,"Tty":false}"#).detach);
    }

    #[test]
    fn empty_and_null_bodies_are_attached_starts() {
        assert_eq!(decode(""), StartConfig::default());
        assert_eq!(decode("  \n"), StartConfig::default());
        assert_eq!(decode("null"), StartConfig::default());
        assert_eq!(decode("{}"), StartConfig::default());
    }

    #[test]
    fn keys_fold_duplicates_apply_in_order_and_null_keeps() {
        assert!(decode(r#"{"detach":true}"#).detach);
        assert!(decode(r#"{"DETACH":true}"#).detach);
        assert!(decode(r#"{"\u0044etach":true}"#).detach);
        assert!(!decode(r#"{"Detach":true,"detach":false}"#).detach);
        assert!(decode(r#"{"Detach":false,"detach":true}"#).detach);
        assert!(decode(r#"{"Detach":true,"Detach":null}"#).detach);
        assert!(decode(r#"{"tty":true,"Tty":null}"#).tty);
    }

    #[test]
    fn console_size_is_optional() {
        assert_eq!(decode(r#"{"ConsoleSize":[24,80]}"#).console_size, Some(UintPair([24, 80])));
        assert_eq!(decode(r#"{"ConsoleSize":[24,80],"consolesize":null}"#).console_size, None);
    }

    #[test]
    fn what_sdks_send_is_read_as_go_reads_it() {
        // bollard adds "OutputCapacity"; dockerode sends its own options.
        let d = decode_all(r#"{"Detach":false,"Tty":false,"OutputCapacity":null}"#);
        assert_eq!(d.value, StartConfig::default());
        assert_eq!(d.ignored.keys, vec!["OutputCapacity"]);
        let d = decode_all(r#"{"hijack":true,"stdin":true}"#);
        assert_eq!(d.value, StartConfig::default());
        assert_eq!(d.ignored.keys, vec!["hijack", "stdin"]);
        let d = decode_all(r#"{"Detach":true,"Stdin":{"deep":[1,2,{"x":null}]}}"#);
        assert!(d.value.detach);
        assert_eq!(d.ignored.total, 1);
    }

    #[test]
    fn podmans_terminal_size_is_carried_when_podman_could_read_it() {
        let d = decode_all(r#"{"Tty":true,"h":24,"W":80}"#);
        assert_eq!((d.value.height, d.value.width), (Some(24), Some(80)));
        let body: serde_json::Value = serde_json::to_value(d.value).expect("json");
        assert_eq!(body, serde_json::json!({"Detach": false, "Tty": true, "h": 24, "w": 80}));
        let d = decode_all(r#"{"h":70000,"w":"80","h":null}"#);
        assert_eq!((d.value.height, d.value.width), (None, None));
        assert_eq!(d.ignored.keys, vec!["h", "w"]);
        let plain: serde_json::Value = serde_json::to_value(decode("{}")).expect("json");
        assert_eq!(plain, serde_json::json!({"Detach": false, "Tty": false}));
    }

    #[test]
    fn wrong_types_and_trailing_data_are_refused() {
        for text in [
            r#"{"Detach":"true"}"#,
            r#"{"Detach":1}"#,
            r#"{"Tty":[]}"#,
            r#"{"Detach":true,"Stdin":tru}"#,
            r#"{"Detach":true} {"Detach":false}"#,
            r#"[]"#,
            r#""x""#,
            r#"{"Detach":tru"#,
        ] {
            assert!(StartConfig::decode(text.as_bytes()).is_err(), "{text}");
        }
    }
}
