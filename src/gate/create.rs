//! The body of `POST /containers/{name}/exec`, decoded as the daemon decodes it
//! and re-encoded canonically: what the policy judged is the body the daemon gets.

use std::fmt;

use serde::Serialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::gojson::{self, Decoded, Ignored, UintPair};

/// The daemon's `ExecConfig`, field for field (API 1.41 and later).
///
/// Serializes with the daemon's field names: that form is both the body
/// forwarded to the daemon and `input.exec` in policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    /// User spec (`name`, `uid`, `user:group`); empty means the container's default.
    pub user: String,
    /// Run with all capabilities and devices.
    pub privileged: bool,
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Initial terminal size `[height, width]`.
    pub console_size: Option<UintPair>,
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Sent by old clients; the daemon ignores it at create.
    pub detach: bool,
    /// Key sequence that detaches a TTY session.
    pub detach_keys: String,
    /// `NAME=value` entries merged into the container's environment; `None` is null.
    pub env: Option<Vec<String>>,
    /// Working directory; empty means the container's.
    pub working_dir: String,
    /// The command and its arguments; `None` is null.
    pub cmd: Option<Vec<String>>,
}

impl ExecConfig {
    /// Decodes a create body with Go `encoding/json` semantics: unknown keys
    /// are skipped (and listed), wrong types refused.
    pub fn decode(body: &[u8]) -> Result<Decoded<Self>, serde_json::Error> {
        let config: Option<CreateBody> = serde_json::from_slice(body)?;
        Ok(config.map(|c| c.0).unwrap_or_default())
    }

    /// The canonical body to forward.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings, bools and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A Go `[]string`: `null` is nil, a `null` element is `""`.
fn string_list<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Vec<String>>, A::Error> {
    let list = map.next_value::<Option<Vec<Option<String>>>>()?;
    Ok(list.map(|items| items.into_iter().map(Option::unwrap_or_default).collect()))
}

/// A create body being decoded: the config and the keys it skipped.
struct CreateBody(Decoded<ExecConfig>);

impl<'de> serde::Deserialize<'de> for CreateBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConfigVisitor;
        impl<'de> Visitor<'de> for ConfigVisitor {
            type Value = CreateBody;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exec create object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CreateBody, A::Error> {
                let mut c = ExecConfig::default();
                let mut ignored = Ignored::default();
                while let Some(key) = map.next_key::<String>()? {
                    let is = |field: &str| gojson::key_matches(&key, field);
                    // `null` leaves strings and bools unchanged; lists become nil.
                    if is("User") {
                        gojson::keep_unless_null(&mut map, &mut c.user)?;
                    } else if is("Privileged") {
                        gojson::keep_unless_null(&mut map, &mut c.privileged)?;
                    } else if is("Tty") {
                        gojson::keep_unless_null(&mut map, &mut c.tty)?;
                    } else if is("ConsoleSize") {
                        c.console_size = map.next_value::<Option<UintPair>>()?;
                    } else if is("AttachStdin") {
                        gojson::keep_unless_null(&mut map, &mut c.attach_stdin)?;
                    } else if is("AttachStderr") {
                        gojson::keep_unless_null(&mut map, &mut c.attach_stderr)?;
                    } else if is("AttachStdout") {
                        gojson::keep_unless_null(&mut map, &mut c.attach_stdout)?;
                    } else if is("Detach") {
                        gojson::keep_unless_null(&mut map, &mut c.detach)?;
                    } else if is("DetachKeys") {
                        gojson::keep_unless_null(&mut map, &mut c.detach_keys)?;
                    } else if is("Env") {
                        c.env = string_list(&mut map)?;
                    } else if is("WorkingDir") {
                        gojson::keep_unless_null(&mut map, &mut c.working_dir)?;
                    } else if is("Cmd") {
                        c.cmd = string_list(&mut map)?;
                    } else {
                        ignored.skip(&mut map, &key)?;
                    }
                }
                Ok(CreateBody(Decoded { value: c, ignored }))
            }
        }
        deserializer.deserialize_map(ConfigVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> ExecConfig {
        decode_all(text).value
    }

    fn decode_all(text: &str) -> Decoded<ExecConfig> {
        ExecConfig::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_clis_body_round_trips() {
        let text = r#"{"User":"app","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cat"]}"#;
        let c = decode(text);
        assert_eq!(c.user, "app");
        assert_eq!(c.cmd, Some(vec!["cat".to_owned()]));
        assert!(c.attach_stdin && c.attach_stdout && c.attach_stderr);
        assert_eq!(decode(std::str::from_utf8(&c.encode()).expect("utf8")), c);
    }

    #[test]
    fn go_key_rules_apply() {
        assert!(decode(r#"{"privileged":true}"#).privileged);
        assert!(decode(r#"{"PRIVILEGED":true}"#).privileged);
        assert!(decode(r#"{"Privileged":false,"privileged":true}"#).privileged, "last duplicate wins");
        assert!(decode(r#"{"\u0050rivileged":true}"#).privileged, "escaped key");
        assert_eq!(decode(r#"{"Uſer":"root"}"#).user, "root", "long s folds to s");
        assert_eq!(decode(r#"{"User":"app","user":null}"#).user, "app", "null keeps a string");
        assert!(decode(r#"{"Tty":true,"tty":null}"#).tty, "null keeps a bool");
        assert_eq!(decode(r#"{"Cmd":["a"],"cmd":null}"#).cmd, None, "null sets a list to nil");
        assert_eq!(decode(r#"{"Env":["A=1",null]}"#).env, Some(vec!["A=1".to_owned(), String::new()]));
        assert_eq!(decode(r#"{"workingdir":"/tmp","WORKINGDIR":"/srv"}"#).working_dir, "/srv");
        assert_eq!(decode("null"), ExecConfig::default());
    }

    #[test]
    fn canonical_body_uses_daemon_names() {
        let c = decode(r#"{"uſer":"x","cmd":["id"],"privileged":true}"#);
        let body: serde_json::Value = serde_json::from_slice(&c.encode()).expect("json");
        assert_eq!(body["User"], "x");
        assert_eq!(body["Privileged"], true);
        assert_eq!(body["Cmd"], serde_json::json!(["id"]));
        assert_eq!(body["ConsoleSize"], serde_json::Value::Null);
        assert_eq!(body.as_object().map(|o| o.len()), Some(12));
    }

    #[test]
    fn refusals() {
        for text in [
            r#"{"Cmd":"id"}"#,
            r#"{"Cmd":[1]}"#,
            r#"{"Privileged":"true"}"#,
            r#"{"Privileged":1}"#,
            r#"{"User":0}"#,
            r#"{"Env":{"A":"1"}}"#,
            r#"{"Cmd":["id"],"Unknown":tru}"#,
            r#"{"Cmd":["id"]}x"#,
            r#"{"Cmd":["id"],}"#,
            r#"["id"]"#,
            "",
            r#"{"Cmd":["\ud800"]}"#,
        ] {
            assert!(ExecConfig::decode(text.as_bytes()).is_err(), "{text}");
        }
        assert!(ExecConfig::decode(b"{\"User\":\"\xff\"}").is_err(), "invalid UTF-8 is refused, not guessed");
    }

    #[test]
    fn unknown_keys_are_skipped_listed_and_never_forwarded() {
        // docker-py sends "Container"; Go ignores keys that match no field.
        let d = decode_all(r#"{"Container":"abc","Cmd":["id"],"Privileged ":true,"X":{"a":[1,null]}}"#);
        assert_eq!(d.value.cmd, Some(vec!["id".to_owned()]));
        assert!(!d.value.privileged, "a key with a trailing space is not Privileged");
        assert_eq!(d.ignored.keys, vec!["Container", "Privileged ", "X"]);
        assert_eq!(d.ignored.total, 3);
        let body: serde_json::Value = serde_json::from_slice(&d.value.encode()).expect("json");
        assert!(body.get("Container").is_none() && body.get("X").is_none());
    }

    #[test]
    fn the_ignored_list_is_bounded() {
        let keys: Vec<String> = (0..100).map(|i| format!("\"k{i}{}\":0", "x".repeat(300))).collect();
        let d = decode_all(&format!("{{{}}}", keys.join(",")));
        assert_eq!(d.ignored.total, 100);
        assert_eq!(d.ignored.keys.len(), 32);
        assert!(d.ignored.keys.iter().all(|k| k.chars().count() == 128));
        let listed = serde_json::to_value(&d.ignored).expect("json");
        assert_eq!(listed.as_array().map(Vec::len), Some(33));
        assert_eq!(listed[32], "… 68 more");
    }
}
