//! Reference models of the parsers of untrusted input, for the fuzz targets
//! (`fuzz/fuzz_targets/`) and the property tests (`tests/properties.rs`, which
//! includes this file by path). Each is written from the rule it models (the
//! daemon's router patterns, Go's `encoding/json`, the stream framing, the
//! audit chain) and apart from execgate's own code, so the two can disagree.
//!
//! Only crates both users have: execgate and its dependencies, and `regex`.

#![allow(dead_code)]

/// The daemon's router: gorilla/mux matching Go regexps against the
/// percent-decoded path.
pub mod route {
    use std::sync::OnceLock;

    use execgate::fuzzing::{Prefix, Route};
    use regex::Regex;

    /// Go's `url.PathUnescape`: `None` when a `%` is not followed by two hex
    /// digits; decoded bytes that are not UTF-8 read as U+FFFD, as Go's regexp
    /// reads them.
    pub fn unescape(path: &str) -> Option<String> {
        let bytes = path.as_bytes();
        let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
        if (0..bytes.len()).any(|i| bytes[i] == b'%' && !(hex(i + 1) && hex(i + 2))) {
            return None;
        }
        Some(percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned())
    }

    /// The exec routes as the daemons register them: Docker's optional
    /// `/v{version:[0-9.]+}`, Podman's `/v{version:[0-9][0-9A-Za-z.-]*}` and
    /// `/libpod`, then the route with a `.*` name. Go's `.` does not match a
    /// newline; neither does this one (execgate's reading is wider there).
    fn patterns() -> &'static [(Regex, &'static str)] {
        static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
        PATTERNS.get_or_init(|| {
            let head = r"^(?:/v(?P<version>[0-9.]+|[0-9][0-9A-Za-z.\-]*))?(?P<libpod>/libpod)?";
            [
                ("/containers/(?P<name>.*)/exec$", "create"),
                ("/exec/(?P<name>.*)/start$", "start"),
                ("/exec/(?P<name>.*)/resize$", "resize"),
                ("/containers/(?P<name>.*)/attach$", "attach"),
                ("/containers/(?P<name>.*)/resize$", "container-resize"),
            ]
            .into_iter()
            .map(|(tail, kind)| (Regex::new(&format!("{head}{tail}")).expect("pattern"), kind))
            .collect()
        })
    }

    /// What the daemon's router makes of a POST to the decoded `path`.
    pub fn classify_decoded(path: &str) -> Route {
        for (pattern, kind) in patterns() {
            let Some(m) = pattern.captures(path) else { continue };
            let name = m["name"].to_owned();
            let prefix = Prefix {
                version: m.name("version").map(|v| v.as_str().to_owned()),
                libpod: m.name("libpod").is_some(),
            };
            return match *kind {
                "create" => Route::ExecCreate { container: name, prefix },
                "start" => Route::ExecStart { exec_id: name, prefix },
                "resize" => Route::ExecResize { exec_id: name },
                "attach" => Route::Attach { container: name, prefix },
                _ => Route::ContainerResize { container: name },
            };
        }
        Route::Other
    }

    /// What the daemon's router makes of a GET to the decoded `path`: only
    /// the WebSocket attach matters.
    fn classify_get(path: &str) -> Route {
        static WS: OnceLock<Regex> = OnceLock::new();
        let ws = WS.get_or_init(|| {
            Regex::new(
                r"^(?:/v(?:[0-9.]+|[0-9][0-9A-Za-z.\-]*))?(?:/libpod)?/containers/(?P<name>.*)/attach/ws$",
            )
            .expect("pattern")
        });
        match ws.captures(path) {
            Some(m) => Route::AttachWebsocket { container: m["name"].to_owned() },
            None => Route::Other,
        }
    }

    /// `None` for a path the daemon refuses to parse.
    pub fn classify(post: bool, path: &str) -> Option<Route> {
        let decoded = unescape(path)?;
        Some(if post { classify_decoded(&decoded) } else { classify_get(&decoded) })
    }

    /// The name (container or exec id) a route carries.
    pub fn name(route: &Route) -> Option<&str> {
        match route {
            Route::ExecCreate { container, .. }
            | Route::Attach { container, .. }
            | Route::AttachWebsocket { container }
            | Route::ContainerResize { container } => Some(container),
            Route::ExecStart { exec_id, .. } | Route::ExecResize { exec_id } => Some(exec_id),
            Route::Other => None,
        }
    }

    /// Every byte percent-encoded: decodes to exactly `text`.
    pub fn escape_all(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }
}

/// Go's `encoding/json` decoding into the daemon's structs.
pub mod gojson {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Value, json};

    /// `bytes.EqualFold` of a JSON key with an ASCII field name: rune by rune,
    /// equal or in one simple-fold orbit. The orbits of the ASCII letters are
    /// `{x, X}`, except `{k, K, U+212A KELVIN SIGN}` and `{s, S, U+017F LONG S}`.
    pub fn equal_fold(key: &str, field: &str) -> bool {
        let same = |k: char, f: char| {
            k == f
                || (k.is_ascii() && k.eq_ignore_ascii_case(&f))
                || (k == '\u{212A}' && f.eq_ignore_ascii_case(&'k'))
                || (k == '\u{17F}' && f.eq_ignore_ascii_case(&'s'))
        };
        key.chars().count() == field.chars().count()
            && key.chars().zip(field.chars()).all(|(k, f)| same(k, f))
    }

    /// One object entry: the field it selects (by index) and its value, or
    /// an ignored key.
    #[derive(Debug)]
    pub enum Entry {
        Field(usize, String, Value),
        Ignored(String),
    }

    /// Reads an object's entries in document order, duplicates kept; values
    /// of keys that select no field are only checked for syntax, as Go does.
    struct Entries<'f>(&'f [&'static str]);

    impl<'de> DeserializeSeed<'de> for Entries<'_> {
        type Value = Option<Vec<Entry>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = Option<Vec<Entry>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                match self.0.iter().position(|field| equal_fold(&key, field)) {
                    Some(index) => entries.push(Entry::Field(index, key, map.next_value()?)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        entries.push(Entry::Ignored(key));
                    }
                }
            }
            Ok(Some(entries))
        }
    }

    /// The entries of a body that is one JSON object (or `null`) and nothing else.
    pub fn entries(body: &[u8], fields: &[&'static str]) -> Result<Option<Vec<Entry>>, String> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let entries = Entries(fields).deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(entries)
    }

    /// A Go `uint` from a JSON number: digits only, no sign, fraction or exponent.
    fn uint(value: &Value) -> Result<u64, String> {
        value
            .as_u64()
            .filter(|_| !value.to_string().contains(['-', '.', 'e', 'E']))
            .ok_or(format!("{value} is not a uint"))
    }

    /// A value into a Go field of the given kind: `Ok(None)` leaves the field
    /// as it was (null into a bool or string).
    fn store(kind: Kind, value: Value) -> Result<Option<Value>, String> {
        match (kind, value) {
            (Kind::Bool | Kind::Str, Value::Null) => Ok(None),
            (Kind::Bool, v @ Value::Bool(_)) | (Kind::Str, v @ Value::String(_)) => Ok(Some(v)),
            // Pointers and slices: null is nil.
            (Kind::Strings | Kind::Pair, Value::Null) => Ok(Some(Value::Null)),
            (Kind::Strings, Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::Null => Ok(json!("")),
                    s @ Value::String(_) => Ok(s),
                    other => Err(format!("{other} in a []string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Some(Value::Array(items))),
            (Kind::Pair, Value::Array(items)) => {
                let mut pair = [0u64; 2];
                for (index, item) in items.iter().enumerate() {
                    let n = if item.is_null() { 0 } else { uint(item)? };
                    if let Some(slot) = pair.get_mut(index)
                        && !item.is_null()
                    {
                        *slot = n;
                    }
                }
                Ok(Some(json!(pair)))
            }
            (kind, other) => Err(format!("{other} into a {kind:?}")),
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Kind {
        Bool,
        Str,
        Strings,
        Pair,
    }

    /// The daemon's `ExecConfig` fields, in its field order, with their kinds.
    const CREATE: [(&str, Kind); 12] = [
        ("User", Kind::Str),
        ("Privileged", Kind::Bool),
        ("Tty", Kind::Bool),
        ("ConsoleSize", Kind::Pair),
        ("AttachStdin", Kind::Bool),
        ("AttachStderr", Kind::Bool),
        ("AttachStdout", Kind::Bool),
        ("Detach", Kind::Bool),
        ("DetachKeys", Kind::Str),
        ("Env", Kind::Strings),
        ("WorkingDir", Kind::Str),
        ("Cmd", Kind::Strings),
    ];

    /// A create body as the daemon decodes it: the canonical body (every
    /// field, the daemon's names) and the ignored keys, in order; `Err` where
    /// the daemon (or execgate, more strictly) refuses it.
    pub fn create(body: &[u8]) -> Result<(Value, Vec<String>), String> {
        let names: Vec<&'static str> = CREATE.iter().map(|(name, _)| *name).collect();
        let mut fields: Vec<Value> = CREATE
            .iter()
            .map(|(_, kind)| match kind {
                Kind::Bool => json!(false),
                Kind::Str => json!(""),
                Kind::Strings | Kind::Pair => Value::Null,
            })
            .collect();
        let mut ignored = Vec::new();
        for entry in entries(body, &names)?.unwrap_or_default() {
            match entry {
                Entry::Field(index, _, value) => {
                    if let Some(value) = store(CREATE[index].1, value)? {
                        fields[index] = value;
                    }
                }
                Entry::Ignored(key) => ignored.push(key),
            }
        }
        let object = names.iter().map(|name| name.to_string()).zip(fields).collect();
        Ok((Value::Object(object), ignored))
    }

    /// A start body as the daemon (Docker's `ExecStartCheck`, plus Podman's
    /// `h`/`w` as `uint16`) decodes it: the canonical body and the ignored keys
    /// (an `h`/`w` that is not a `uint16` is listed, not kept); an empty body
    /// is a default start.
    pub fn start(body: &[u8]) -> Result<(Value, Vec<String>), String> {
        let mut out = json!({"Detach": false, "Tty": false});
        let mut ignored = Vec::new();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok((out, ignored));
        }
        let names = ["Detach", "Tty", "ConsoleSize", "h", "w"];
        for entry in entries(body, &names)?.unwrap_or_default() {
            match entry {
                Entry::Field(index @ (0 | 1), _, value) => {
                    if let Some(value) = store(Kind::Bool, value)? {
                        out[names[index]] = value;
                    }
                }
                Entry::Field(2, _, value) => match store(Kind::Pair, value)? {
                    Some(Value::Null) => {
                        out.as_object_mut().map(|o| o.remove("ConsoleSize"));
                    }
                    Some(pair) => out["ConsoleSize"] = pair,
                    None => {}
                },
                Entry::Field(index, key, value) => {
                    if !value.is_null() {
                        match uint(&value).ok().filter(|n| *n <= u64::from(u16::MAX)) {
                            Some(n) => out[names[index]] = json!(n),
                            None => ignored.push(key),
                        }
                    }
                }
                Entry::Ignored(key) => ignored.push(key),
            }
        }
        Ok((out, ignored))
    }
}

/// The daemon's multiplexed stream: `[stream, 0, 0, 0, len u32 BE]` + payload.
pub mod stream {
    use execgate::fuzzing::Stream;

    /// The payload runs of a whole stream, adjacent runs of one stream joined;
    /// a payload cut short by the end gives what there is.
    pub fn demux(mut bytes: &[u8]) -> Vec<(Stream, Vec<u8>)> {
        let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
        while bytes.len() >= 8 {
            let (header, rest) = bytes.split_at(8);
            let len = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
            let stream = match header[0] {
                0 => Stream::Stdin,
                1 => Stream::Stdout,
                2 => Stream::Stderr,
                _ => Stream::System,
            };
            let (payload, rest) = rest.split_at(len.min(rest.len()));
            if !payload.is_empty() {
                match out.last_mut() {
                    Some((last, run)) if *last == stream => run.extend_from_slice(payload),
                    _ => out.push((stream, payload.to_vec())),
                }
            }
            bytes = rest;
        }
        out
    }

    /// Frames `payloads` into a multiplexed stream.
    pub fn frame(payloads: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (stream, payload) in payloads {
            out.extend_from_slice(&[*stream, 0, 0, 0]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(payload);
        }
        out
    }
}

/// The audit log's hash chain, built the way the writer builds it.
pub mod chain {
    use execgate::audit::chain::{GENESIS, hash, hex};
    use serde_json::{Map, Value, json};

    /// A log made of records with the given `(event, fields)`: seqs from
    /// `first_seq` (wrapping, as a forged log may), `prev` chained from the
    /// genesis hash when the log starts at seq 1, else from `before`; each
    /// file's first record must be an `audit.checkpoint`, which this does not
    /// enforce. Returns the lines (without newlines).
    pub fn build(first_seq: u64, before: [u8; 32], records: &[(String, Map<String, Value>)]) -> Vec<Vec<u8>> {
        let mut prev = if first_seq == 1 { GENESIS } else { before };
        let mut lines = Vec::new();
        for (i, (event, fields)) in records.iter().enumerate() {
            let mut record = Map::new();
            record.insert("seq".into(), json!(first_seq.wrapping_add(i as u64)));
            record.insert("prev".into(), json!(hex(&prev)));
            record.insert("event".into(), json!(event));
            for (key, value) in fields {
                record.entry(key.clone()).or_insert_with(|| value.clone());
            }
            let line = serde_json::to_vec(&Value::Object(record)).expect("json");
            prev = hash(&line);
            lines.push(line);
        }
        lines
    }

    /// Lines grouped into files, each ending with a newline.
    pub fn files(lines: &[Vec<u8>], starts: &[usize]) -> Vec<Vec<u8>> {
        let mut files: Vec<Vec<u8>> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if i == 0 || starts.contains(&i) {
                files.push(Vec::new());
            }
            let file = files.last_mut().expect("a file");
            file.extend_from_slice(line);
            file.push(b'\n');
        }
        files
    }

    /// An anchor line for the record `line` at `seq`.
    pub fn anchor(seq: u64, line: &[u8]) -> String {
        json!({"time": "2024-01-01T00:00:00Z", "reason": "fuzz", "file": "audit-000000000001.jsonl", "seq": seq, "hash": hex(&hash(line))})
            .to_string()
    }
}
