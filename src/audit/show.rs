//! `execgate audit show`: the sessions in an audit directory, and one
//! session's records and transcript.
//!
//! Everything printed here comes from records and recordings a container (and
//! whoever runs execs in it) could fill: command lines, names, reasons, session
//! output. None of it reaches the auditor's terminal raw: control characters
//! (C0, DEL, C1), bidirectional overrides and invisible characters are printed
//! as visible escapes (`\x1b`, `\r`, `\u{202e}`), so a recorded session cannot
//! move the cursor, retitle or clear the terminal, or forge lines of output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Component, Path};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use super::chain;

/// Every record in `dir`, in chain order.
fn records(dir: &Path) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for file in chain::log_files(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        out.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
    }
    Ok(out)
}

/// Whether `c` is printed as an escape rather than as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(
            c,
            '\u{061c}'                      // Arabic letter mark
            | '\u{200b}'..='\u{200f}'       // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'       // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{2069}'       // word joiner, invisible operators, bidi isolates
            | '\u{feff}' // zero-width no-break space
        )
}

/// Appends `s` with every unsafe character escaped. With `lines`, `\n` (and a
/// `\r` right before it) stays a line break and `\t` a tab; otherwise they are
/// escaped too, so the text stays on one line.
fn escape_into(out: &mut String, s: &str, lines: bool) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' if lines => out.push(c),
            '\r' if lines && chars.peek() == Some(&'\n') => {} // CRLF: a plain line break
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c <= '\u{7f}' && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `s` on one line, safe for a terminal.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s, false);
    out
}

/// Bytes that are not UTF-8, safe for a terminal: the UTF-8 runs escaped as
/// [`escape_into`] does, every other byte as `\xNN`.
fn escape_bytes(bytes: &[u8], lines: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        escape_into(&mut out, chunk.valid(), lines);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A field of a record as one escaped line (`-` when absent).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

fn command(record: &Value) -> String {
    record["command"]
        .as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "-".into())
}

/// The container's name, or the reference asked for when it was never resolved.
fn container(record: &Value) -> String {
    let c = &record["container"];
    if c["name"].is_null() && !c["reference"].is_null() { text(&c["reference"]) } else { text(&c["name"]) }
}

fn caller(record: &Value) -> String {
    let c = &record["caller"];
    match c["loginuid"].as_u64() {
        Some(login) if Some(login) != c["uid"].as_u64() => format!("uid {} (login {login})", text(&c["uid"])),
        _ => format!("uid {}", text(&c["uid"])),
    }
}

/// The `reasons` of a record, escaped.
fn reasons(record: &Value) -> Vec<String> {
    record["reasons"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default()
}

/// How much of a denial the session list shows, in characters.
const BRIEF: usize = 160;

/// `reasons` on one line, cut at [`BRIEF`] characters.
fn brief(reasons: &[String]) -> String {
    let all = if reasons.is_empty() { "(no reason recorded)".to_owned() } else { reasons.join("; ") };
    match all.char_indices().nth(BRIEF) {
        Some((at, _)) => format!("{}…", &all[..at]),
        None => all,
    }
}

/// One row of the session list.
struct Row {
    cells: [String; 7],
    /// Why it was denied (empty when allowed).
    denied: Vec<String>,
}

/// A table of sessions: time, caller, container, command, decision, exit;
/// under a denied one, why.
pub fn list(dir: &Path) -> Result<String> {
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    let mut by_exec: BTreeMap<String, u64> = BTreeMap::new();
    for (index, r) in records(dir)?.iter().enumerate() {
        let seq = r["seq"].as_u64().unwrap_or(index as u64);
        let exec_id = r["exec_id"].as_str().map(str::to_owned);
        match r["event"].as_str() {
            Some("exec.create") if r["decision"] == "deny" => {
                rows.insert(seq, row(r, "-", "denied at create"));
            }
            Some("exec.start") => {
                let id = exec_id.clone().unwrap_or_default();
                let decision = if r["decision"] == "allow" { "allowed" } else { "denied at start" };
                let short: String = id.chars().take(12).collect();
                rows.insert(seq, row(r, &escape(&short), decision));
                by_exec.insert(id, seq);
            }
            Some("exec.end") => {
                if let Some(row) = exec_id.and_then(|id| by_exec.get(&id)).and_then(|s| rows.get_mut(s)) {
                    row.cells[6] = format!("{} ({})", text(&r["exit_code"]), text(&r["reason"]));
                }
            }
            _ => {}
        }
    }
    let mut out = String::from(
        "TIME                         EXEC          CALLER            CONTAINER         DECISION          EXIT              COMMAND\n",
    );
    for Row { cells: [time, id, who, container, decision, cmd, exit], denied } in rows.into_values() {
        let _ =
            writeln!(out, "{time:<28} {id:<13} {who:<17} {container:<17} {decision:<17} {exit:<17} {cmd}");
        if decision.starts_with("denied") {
            let _ = writeln!(out, "    reasons: {}", brief(&denied));
        }
    }
    Ok(out)
}

fn row(r: &Value, id: &str, decision: &str) -> Row {
    Row {
        cells: [
            text(&r["time"]),
            id.to_owned(),
            caller(r),
            container(r),
            decision.to_owned(),
            command(r),
            "-".to_owned(),
        ],
        denied: if r["decision"] == "deny" { reasons(r) } else { Vec::new() },
    }
}

/// The one exec id `prefix` names among the ids in `records`.
fn resolve(records: &[Value], prefix: &str) -> Result<String> {
    let ids: BTreeSet<&str> = records.iter().filter_map(|r| r["exec_id"].as_str()).collect();
    if ids.contains(prefix) {
        return Ok(prefix.to_owned());
    }
    let matching: Vec<&str> = ids.into_iter().filter(|id| id.starts_with(prefix)).collect();
    match matching.as_slice() {
        [] => anyhow::bail!("no records for exec {}", escape(prefix)),
        [one] => Ok((*one).to_owned()),
        many => anyhow::bail!(
            "exec id prefix \"{}\" is ambiguous: it matches {} execs; give more of the id:\n  {}",
            escape(prefix),
            many.len(),
            many.iter().map(|id| escape(id)).collect::<Vec<_>>().join("\n  ")
        ),
    }
}

/// One record of a session, with the reasons and warnings of a decision.
fn describe(out: &mut String, r: &Value) {
    let event = r["event"].as_str().unwrap_or("");
    let head = format!("#{} {} {}", text(&r["seq"]), text(&r["time"]), text(&r["event"]));
    match event {
        "exec.create" | "exec.start" => {
            let _ = writeln!(
                out,
                "{head} {}: {} as {} in {} (caller {})",
                text(&r["decision"]),
                command(r),
                text(&r["user"]["effective"]),
                container(r),
                caller(r),
            );
            if r["decision"] != "allow" {
                let denied = reasons(r);
                if denied.is_empty() {
                    out.push_str("    reason: (none recorded)\n");
                }
                for reason in denied {
                    let _ = writeln!(out, "    reason: {reason}");
                }
            }
            for warning in r["warnings"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "    warning: {}", text(warning));
            }
        }
        "exec.end" => {
            let _ = writeln!(
                out,
                "{head}: reason={} exit_code={} duration_ms={}",
                text(&r["reason"]),
                text(&r["exit_code"]),
                text(&r["duration_ms"])
            );
            if !r["detail"].is_null() {
                let _ = writeln!(out, "    detail: {}", text(&r["detail"]));
            }
        }
        "recording.checkpoint" => {
            let _ = writeln!(out, "{head}: {} bytes", text(&r["recording"]["bytes"]));
        }
        _ => {
            let _ = writeln!(out, "{head}");
        }
    }
}

/// Whether a recording path from a record stays inside the audit directory.
fn inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// One exec's records (its `exec.create` included), then its transcript.
/// `exec_id` may be a prefix of the id; one that names more than one exec is
/// refused with the ids it matches.
pub fn session(dir: &Path, exec_id: &str) -> Result<String> {
    let all = records(dir)?;
    let id = resolve(&all, exec_id)?;
    let mine: Vec<usize> =
        (0..all.len()).filter(|&i| all[i]["exec_id"].as_str() == Some(id.as_str())).collect();
    // The create record has no exec id (the daemon names the exec after it is
    // written): the start record links it by `created_seq`.
    let created: BTreeSet<u64> = mine.iter().filter_map(|&i| all[i]["created_seq"].as_u64()).collect();
    let mut shown: Vec<usize> = mine.clone();
    shown.extend((0..all.len()).filter(|&i| {
        all[i]["event"] == "exec.create" && all[i]["seq"].as_u64().is_some_and(|s| created.contains(&s))
    }));
    shown.sort_unstable();
    shown.dedup();

    let mut out = format!("exec {}\n\n", escape(&id));
    let has_create = shown.iter().any(|&i| all[i]["event"] == "exec.create");
    if !has_create {
        match created.iter().next() {
            Some(seq) => {
                let _ = writeln!(out, "(exec.create record #{seq} is no longer in the retained log)");
            }
            None => out.push_str(
                "(no exec.create record: the exec was created directly on the daemon, or by an \
                 execgate that is no longer running)\n",
            ),
        }
    }
    let mut recording = None;
    for &i in &shown {
        describe(&mut out, &all[i]);
        if let Some(path) = all[i]["recording"]["path"].as_str() {
            recording = Some(path.to_owned());
        }
    }
    match recording {
        None => out.push_str("\n(no recording)\n"),
        Some(path) if !inside(&path) => {
            let _ = writeln!(
                out,
                "\n(recording path {} is outside the audit directory; not read)",
                escape(&path)
            );
        }
        Some(path) => match std::fs::read(dir.join(&path)) {
            Ok(bytes) => {
                let _ = writeln!(out, "\ntranscript ({}):", escape(&path));
                out.push_str(&transcript(&String::from_utf8_lossy(&bytes)));
            }
            Err(err) => {
                let _ = writeln!(out, "\n(recording {} cannot be read: {err})", escape(&path));
            }
        },
    }
    Ok(out)
}

/// Renders a recording (asciicast or JSON lines) as readable text, with
/// control characters escaped (line breaks and tabs kept).
pub fn transcript(recording: &str) -> String {
    let mut out = String::new();
    for line in recording.lines().skip(1).filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let (t, stream, data) = match &line {
            Value::Array(event) => {
                let code = event.get(1).and_then(Value::as_str).unwrap_or("");
                let stream = match code {
                    "i" => "stdin",
                    "o" => "output",
                    "r" => "resize",
                    "m" => "marker",
                    _ => continue, // `x`: exact bytes already shown as text beside it
                };
                let data = match event.get(2) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                (event.first().cloned(), stream.to_owned(), data)
            }
            Value::Object(_) => {
                let data = match (&line["d"], line["b64"].as_str()) {
                    (Value::String(d), _) => d.clone(),
                    (Value::Null, Some(b)) => {
                        let bytes = BASE64.decode(b).unwrap_or_default();
                        // Escaped below like any text: its bytes are already visible.
                        let shown = escape_bytes(&bytes, true);
                        format!("[{} bytes, not UTF-8] {}", bytes.len(), shown)
                    }
                    (Value::Null, None) => String::new(),
                    (other, _) => other.to_string(),
                };
                (Some(line["t"].clone()), text(&line["s"]), data)
            }
            _ => continue,
        };
        let t = t.and_then(|t| t.as_f64()).unwrap_or(0.0);
        let mut data_shown = String::with_capacity(data.len());
        escape_into(&mut data_shown, &data, true);
        let stream = escape(&stream);
        for part in data_shown.split_inclusive('\n') {
            let _ = write!(out, "{t:>9.3} {stream:<7}| {part}");
            if !part.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A temporary audit directory holding `records` (one log file) and
    /// `recordings` (path relative to the dir, contents).
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(records: &[Value], recordings: &[(&str, &str)]) -> Dir {
            let temp = tempfile::tempdir().expect("temp dir");
            let dir = temp.path();
            std::fs::create_dir_all(dir.join("sessions")).expect("dir");
            let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
            std::fs::write(dir.join(chain::file_name(1)), lines).expect("log");
            for (path, text) in recordings {
                std::fs::write(dir.join(path), text).expect("recording");
            }
            Dir(temp)
        }

        fn path(&self) -> &Path {
            self.0.path()
        }
    }

    const A: &str = "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111";
    const B: &str = "aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222";

    /// Records shaped as execgate writes them (see `exec::ExecGate::record`).
    fn exec_record(seq: u64, event: &str, exec_id: Option<&str>, decision: &str, extra: Value) -> Value {
        let mut r = json!({
            "seq": seq, "time": format!("2026-01-01T00:00:{seq:02}Z"), "prev": "00", "event": event,
            "exec_id": exec_id, "decision": decision,
            "reasons": if decision == "deny" { json!(["not allowed here"]) } else { json!([]) },
            "warnings": [],
            "container": {"id": "c0ffee", "name": "web", "image": "busybox"},
            "command": ["sh", "-c", "echo hi"],
            "user": {"requested": "", "effective": "1000", "uid": 1000},
            "caller": {"uid": 0, "gid": 0, "loginuid": null},
        });
        if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                r.insert(k.clone(), v.clone());
            }
        }
        r
    }

    fn session_of(id: &str, create_seq: u64, start_seq: u64, recording: Option<&str>) -> Vec<Value> {
        vec![
            exec_record(create_seq, "exec.create", None, "allow", json!({})),
            exec_record(
                start_seq,
                "exec.start",
                Some(id),
                "allow",
                json!({"created_seq": create_seq, "recording": recording.map(|p| json!({"path": p}))}),
            ),
            json!({"seq": start_seq + 1, "time": "t", "event": "exec.end", "exec_id": id, "reason": "exited",
                   "exit_code": 0, "duration_ms": 5, "recording": recording.map(|p| json!({"path": p}))}),
        ]
    }

    #[test]
    fn escapes_controls_visibly() {
        assert_eq!(escape("a\x1b[2J\x07b\rc\nd\te\x7f"), "a\\x1b[2J\\x07b\\rc\\nd\\te\\x7f");
        assert_eq!(escape("\u{9b}31m \u{202e}evil \u{200b}x"), "\\u{9b}31m \\u{202e}evil \\u{200b}x");
        assert_eq!(escape("plain ünïcode 日本 \\x41"), "plain ünïcode 日本 \\x41");
        let mut kept = String::new();
        escape_into(&mut kept, "l1\r\nl2\n\tl3\rl4\x1b]0;t\x07", true);
        assert_eq!(kept, "l1\nl2\n\tl3\\rl4\\x1b]0;t\\x07");
        assert_eq!(escape_bytes(b"ok\xff\xfe\x1b\n", true), "ok\\xff\\xfe\\x1b\n");
    }

    #[test]
    fn transcripts_reach_the_terminal_escaped() {
        let jsonl = concat!(
            r#"{"execgate_recording":1}"#,
            "\n",
            r#"{"t":0.1,"s":"stdout","d":"\u001b[2J\u001b]0;pwned\u0007hi\r\nnext\rover\u009b1m\n"}"#,
            "\n",
            r#"{"t":0.2,"s":"stderr","b64":"/xtbMm0K"}"#,
            "\n",
            r#"{"t":0.3,"s":"st\u001bdin","d":"\tx"}"#,
            "\n",
        );
        let shown = transcript(jsonl);
        assert!(!shown.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{shown:?}");
        assert!(shown.contains("| \\x1b[2J\\x1b]0;pwned\\x07hi\n"), "{shown}");
        assert!(shown.contains("| next\\rover\\u{9b}1m\n"), "{shown}");
        assert!(shown.contains("[6 bytes, not UTF-8] \\xff\\x1b[2m\n"), "{shown}");
        assert!(shown.contains("st\\x1bdin| \tx"), "{shown}");
        let cast = "{\"version\":2}\n[0.5,\"o\",\"\\u001b[31mred\\r\\n\"]\n[0.5,\"x\",\"AAAA\"]\n";
        assert_eq!(transcript(cast), "    0.500 output | \\x1b[31mred\n");
    }

    #[test]
    fn record_fields_are_escaped_in_list_and_session() {
        let nasty = json!({
            "command": ["sh", "-c", "x\n2026-01-01T00:00:00Z  fake row\u{1b}[2K"],
            "container": {"name": "web\u{1b}]0;t\u{7}", "id": "c", "image": "i"},
            "reasons": ["bad\u{1b}[8m hidden"],
        });
        let mut records = vec![exec_record(1, "exec.create", None, "deny", nasty.clone())];
        records.extend(session_of(A, 2, 3, None));
        records[2]["command"] = nasty["command"].clone();
        let dir = Dir::new(&records, &[]);
        for shown in [list(dir.path()).expect("list"), session(dir.path(), A).expect("session")] {
            assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
            assert!(shown.contains("x\\n2026-01-01T00:00:00Z  fake row\\x1b[2K"), "{shown}");
        }
        let listed = list(dir.path()).expect("list");
        assert!(listed.contains("web\\x1b]0;t\\x07"), "{listed}");
        assert!(listed.contains("reasons: bad\\x1b[8m hidden"), "{listed}");
    }

    #[test]
    fn an_ambiguous_prefix_is_refused_with_the_ids_it_matches() {
        let mut records = session_of(A, 1, 2, None);
        records.extend(session_of(B, 4, 5, None));
        let dir = Dir::new(&records, &[]);
        for prefix in ["aaaa", "", "a"] {
            let err = format!("{:#}", session(dir.path(), prefix).expect_err("ambiguous"));
            assert!(err.contains("ambiguous") && err.contains(A) && err.contains(B), "{err}");
        }
        let one = session(dir.path(), "aaaa2").expect("unique prefix");
        assert!(one.contains(B) && !one.contains(A), "{one}");
        assert!(session(dir.path(), A).expect("full id").contains(A));
        assert!(
            format!("{:#}", session(dir.path(), "b").expect_err("none")).contains("no records for exec b")
        );
    }

    #[test]
    fn a_session_shows_its_create_record_and_denial_reasons() {
        let mut records = session_of(A, 1, 3, None);
        // Another exec's create between them must not be shown.
        records.insert(1, exec_record(2, "exec.create", None, "allow", json!({"command": ["other"]})));
        records.push(exec_record(
            9,
            "exec.start",
            Some(B),
            "deny",
            json!({"created_seq": null, "reasons": ["exec as root is not allowed", "second reason"],
                   "warnings": ["odd \u{1b}[1m warning"]}),
        ));
        let dir = Dir::new(&records, &[]);
        let shown = session(dir.path(), "aaaa1").expect("session");
        assert!(
            shown.contains("#1 2026-01-01T00:00:01Z exec.create allow: sh -c echo hi as 1000 in web"),
            "{shown}"
        );
        assert!(shown.contains("#3 2026-01-01T00:00:03Z exec.start allow"), "{shown}");
        assert!(!shown.contains("other"), "{shown}");
        let denied = session(dir.path(), "aaaa2").expect("session");
        assert!(denied.contains("exec.start deny"), "{denied}");
        assert!(
            denied.contains("    reason: exec as root is not allowed\n    reason: second reason\n"),
            "{denied}"
        );
        assert!(denied.contains("    warning: odd \\x1b[1m warning"), "{denied}");
        assert!(denied.contains("no exec.create record"), "{denied}");
        let listed = list(dir.path()).expect("list");
        assert!(listed.contains("denied at start"), "{listed}");
        assert!(listed.contains("    reasons: exec as root is not allowed; second reason\n"), "{listed}");
    }

    #[test]
    fn a_denied_create_is_listed_with_its_reasons_cut_short() {
        let long = "x".repeat(500);
        let records = vec![exec_record(1, "exec.create", None, "deny", json!({"reasons": [long]}))];
        let listed = list(Dir::new(&records, &[]).path()).expect("list");
        assert!(listed.contains("denied at create"), "{listed}");
        let line = listed.lines().find(|l| l.trim_start().starts_with("reasons:")).expect("reasons line");
        assert!(line.ends_with('…') && line.chars().count() < 200, "{line}");
    }

    #[test]
    fn recordings_are_read_only_inside_the_audit_dir() {
        assert!(inside("sessions/x.jsonl"));
        assert!(!inside("/etc/passwd") && !inside("../x") && !inside("sessions/../../x") && !inside(""));
        let records = session_of(A, 1, 2, Some("/etc/passwd"));
        let shown = session(Dir::new(&records, &[]).path(), A).expect("session");
        assert!(shown.contains("outside the audit directory") && !shown.contains("root:"), "{shown}");
        let path = "sessions/a.jsonl";
        let recording = "{\"execgate_recording\":1}\n{\"t\":0.1,\"s\":\"stdout\",\"d\":\"\\u001bc\"}\n";
        let shown = session(Dir::new(&session_of(A, 1, 2, Some(path)), &[(path, recording)]).path(), A)
            .expect("session");
        assert!(shown.contains("stdout | \\x1bc\n"), "{shown}");
    }
}
