//! `execgate audit show`: the sessions in an audit directory, and one
//! session's records and transcript. Sessions are execs (`exec.*` records,
//! named by `exec_id`) and attaches to a container's stdio (`attach.*`
//! records, named by `attach_id`, which starts with `attach-`).
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

/// The kind (`exec` or `attach`) and id of the session a record is about.
fn kind_and_id(record: &Value) -> Option<(&'static str, &str)> {
    match (record["attach_id"].as_str(), record["exec_id"].as_str()) {
        (Some(id), _) => Some(("attach", id)),
        (None, Some(id)) => Some(("exec", id)),
        (None, None) => None,
    }
}

/// The id of the session a record is about.
fn id_of(record: &Value) -> Option<&str> {
    kind_and_id(record).map(|(_, id)| id)
}

/// An exec's command, or the command of the PID 1 an attach reaches.
fn command(record: &Value) -> String {
    let process = &record["process"];
    let command = if process.is_object() { &process["command"] } else { &record["command"] };
    let words: Vec<String> = match command {
        Value::Array(words) => words.iter().map(text).collect(),
        Value::Null => Vec::new(),
        // Capped: too long to keep whole.
        other => vec![text(other)],
    };
    if words.is_empty() { "-".into() } else { words.join(" ") }
}

/// Who an exec runs as, or who the PID 1 an attach reaches runs as (the
/// container's configured user; `(default)` when it names none).
fn user(record: &Value) -> String {
    let process = &record["process"];
    let user = if process.is_object() { &process["user"] } else { &record["user"]["effective"] };
    match user {
        Value::String(s) if s.is_empty() => "(default)".into(),
        other => text(other),
    }
}

/// Bytes through a session, from its end record: `stdin/stdout/stderr`.
fn bytes(record: &Value) -> String {
    let b = &record["bytes"];
    if !b.is_object() {
        return "-".into();
    }
    format!("{}/{}/{}", text(&b["stdin"]), text(&b["stdout"]), text(&b["stderr"]))
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
    cells: [String; 10],
    /// Why it was denied (empty when allowed).
    denied: Vec<String>,
}

/// A table of sessions, execs and attaches in the order they started: time,
/// kind, id, caller, container, user, decision, exit (code and end reason),
/// bytes in/out/err, command (an attach's is PID 1's); under a denied one, why.
/// Requests a request policy denied are listed among them (kind `request`,
/// the method and route as the command).
pub fn list(dir: &Path) -> Result<String> {
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    let mut by_id: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for (index, r) in records(dir)?.iter().enumerate() {
        let seq = r["seq"].as_u64().unwrap_or(index as u64);
        match (r["event"].as_str(), kind_and_id(r)) {
            (Some("exec.create"), _) if r["decision"] == "deny" => {
                rows.insert(seq, row(r, "exec", "-", "denied at create"));
            }
            (Some(event @ ("exec.start" | "attach.start")), session) => {
                let (kind, decision) = match event {
                    "exec.start" => ("exec", "denied at start"),
                    _ => ("attach", "denied"),
                };
                let decision = if r["decision"] == "allow" { "allowed" } else { decision };
                let id = session.map(|(_, id)| id).unwrap_or_default();
                // As much of the id as tells sessions apart, `attach-` kept so
                // it can be given to `--exec` as it is.
                let shown = if kind == "attach" { 19 } else { 12 };
                let short: String = id.chars().take(shown).collect();
                rows.insert(seq, row(r, kind, &escape(&short), decision));
                by_id.insert((kind, id.to_owned()), seq);
            }
            // Requests refused by a request policy stand beside the sessions;
            // the allowed ones are in the log, not in this list.
            (Some("request"), _) if r["decision"] == "deny" => {
                let mut denied = row(r, "request", "-", "denied");
                denied.cells[4] = if r["container"].is_object() { container(r) } else { "-".to_owned() };
                denied.cells[5] = "-".to_owned();
                let route = r["route"].as_str().map(escape).unwrap_or_else(|| text(&r["path"]));
                denied.cells[9] = format!("{} {route}", text(&r["method"]));
                rows.insert(seq, denied);
            }
            (Some(event @ ("exec.end" | "attach.end")), Some((kind, id)))
                if event.strip_suffix(".end") == Some(kind) =>
            {
                if let Some(row) = by_id.get(&(kind, id.to_owned())).and_then(|s| rows.get_mut(s)) {
                    row.cells[7] = format!("{} ({})", text(&r["exit_code"]), text(&r["reason"]));
                    row.cells[8] = bytes(r);
                }
            }
            _ => {}
        }
    }
    let mut out = format!(
        "{:<28} {:<6} {:<19} {:<17} {:<17} {:<10} {:<17} {:<17} {:<14} COMMAND\n",
        "TIME", "KIND", "SESSION", "CALLER", "CONTAINER", "USER", "DECISION", "EXIT", "IN/OUT/ERR"
    );
    for Row { cells: [time, kind, id, who, container, user, decision, exit, bytes, cmd], denied } in
        rows.into_values()
    {
        let _ = writeln!(
            out,
            "{time:<28} {kind:<6} {id:<19} {who:<17} {container:<17} {user:<10} {decision:<17} {exit:<17} \
             {bytes:<14} {cmd}"
        );
        if decision.starts_with("denied") {
            let _ = writeln!(out, "    reasons: {}", brief(&denied));
        }
    }
    Ok(out)
}

fn row(r: &Value, kind: &str, id: &str, decision: &str) -> Row {
    Row {
        cells: [
            text(&r["time"]),
            kind.to_owned(),
            id.to_owned(),
            caller(r),
            container(r),
            user(r),
            decision.to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            command(r),
        ],
        denied: if r["decision"] == "deny" { reasons(r) } else { Vec::new() },
    }
}

/// The one session id (an exec's, or an attach's) `prefix` names among the
/// ids in `records`.
fn resolve(records: &[Value], prefix: &str) -> Result<String> {
    let ids: BTreeSet<&str> = records.iter().filter_map(id_of).collect();
    if ids.contains(prefix) {
        return Ok(prefix.to_owned());
    }
    let matching: Vec<&str> = ids.into_iter().filter(|id| id.starts_with(prefix)).collect();
    match matching.as_slice() {
        [] => anyhow::bail!("no records for exec {} (nor for an attach session)", escape(prefix)),
        [one] => Ok((*one).to_owned()),
        many => anyhow::bail!(
            "session id prefix \"{}\" is ambiguous: it matches {} sessions; give more of the id:\n  {}",
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
        "exec.create" | "exec.start" | "attach.start" => {
            let _ = writeln!(
                out,
                "{head} {}: {}{} as {} in {} (caller {})",
                text(&r["decision"]),
                if event == "attach.start" { "PID 1 " } else { "" },
                command(r),
                user(r),
                container(r),
                caller(r),
            );
            if event == "attach.start" {
                let _ = writeln!(out, "    {}", attached(r));
            }
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
        "exec.end" | "attach.end" => {
            let _ = writeln!(
                out,
                "{head}: reason={} exit_code={} duration_ms={}",
                text(&r["reason"]),
                text(&r["exit_code"]),
                text(&r["duration_ms"])
            );
            if r["bytes"].is_object() {
                let b = &r["bytes"];
                let _ = writeln!(
                    out,
                    "    bytes: stdin {}, stdout {}, stderr {}, not stored {}",
                    text(&b["stdin"]),
                    text(&b["stdout"]),
                    text(&b["stderr"]),
                    text(&b["not_stored"])
                );
            }
            if !r["recording_error"].is_null() {
                let _ = writeln!(out, "    recording error: {}", text(&r["recording_error"]));
            }
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

/// What an attach asked for: a TTY or not, the streams, logs, detach keys.
fn attached(r: &Value) -> String {
    let a = &r["attach"];
    let streams: Vec<&str> =
        ["stdin", "stdout", "stderr", "logs", "stream"].into_iter().filter(|s| a[s] == true).collect();
    let streams = if streams.is_empty() { "none".to_owned() } else { streams.join(" ") };
    let tty = match r["tty"].as_bool() {
        Some(true) => "tty",
        Some(false) => "no tty",
        None => "tty unknown",
    };
    match &a["detach_keys"] {
        Value::Null => format!("attach: {streams}; {tty}"),
        keys => format!("attach: {streams}; {tty}; detach keys {}", text(keys)),
    }
}

/// Whether a recording path from a record stays inside the audit directory.
fn inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// One session's records (an exec's `exec.create` included), then its
/// transcript. `exec_id` is the id of an exec or of an attach session
/// (`attach-…`), or a prefix of it; one that names more than one session is
/// refused with the ids it matches.
pub fn session(dir: &Path, exec_id: &str) -> Result<String> {
    let all = records(dir)?;
    let id = resolve(&all, exec_id)?;
    let mine: Vec<usize> = (0..all.len()).filter(|&i| id_of(&all[i]) == Some(id.as_str())).collect();
    let kind = mine.first().and_then(|&i| kind_and_id(&all[i])).map_or("exec", |(kind, _)| kind);
    // The create record has no exec id (the daemon names the exec after it is
    // written): the start record links it by `created_seq`.
    let created: BTreeSet<u64> = mine.iter().filter_map(|&i| all[i]["created_seq"].as_u64()).collect();
    let mut shown: Vec<usize> = mine.clone();
    shown.extend((0..all.len()).filter(|&i| {
        all[i]["event"] == "exec.create" && all[i]["seq"].as_u64().is_some_and(|s| created.contains(&s))
    }));
    shown.sort_unstable();
    shown.dedup();

    let mut out = format!("{kind} {}\n\n", escape(&id));
    let has_create = shown.iter().any(|&i| all[i]["event"] == "exec.create");
    // An attach has no create: it is judged once, at its start.
    if kind == "exec" && !has_create {
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
        merge(&mut r, extra);
        r
    }

    /// `r` with the fields of `extra` set over its own.
    fn merge(r: &mut Value, extra: Value) {
        if let (Some(r), Value::Object(extra)) = (r.as_object_mut(), extra) {
            r.extend(extra);
        }
    }

    const X: &str = "attach-1111aaaa1111aaaa1111aaaa1111aaaa";
    const Y: &str = "attach-1111bbbb1111bbbb1111bbbb1111bbbb";
    const Z: &str = "attach-2222cccc2222cccc2222cccc2222cccc";
    const W: &str = "attach-3333dddd3333dddd3333dddd3333dddd";

    /// Attach records shaped as execgate writes them: an `attach.start`
    /// (allowed ones name their recording), or its `attach.end`, which repeats
    /// the start's facts.
    fn attach_record(seq: u64, event: &str, id: &str, extra: Value) -> Value {
        let mut r = json!({
            "seq": seq, "time": format!("2026-01-01T00:00:{seq:02}Z"), "prev": "00", "event": event,
            "attach_id": id,
            "container": {"id": "c0ffee", "name": "web", "image": "busybox"},
            "process": {"command": ["/bin/sh", "-l"], "user": ""},
            "tty": true,
            "attach": {"stdin": true, "stdout": true, "stderr": true, "logs": false, "stream": true,
                       "detach_keys": "ctrl-p,ctrl-q"},
            "caller": {"uid": 1000, "gid": 1000, "loginuid": 1001},
            "request": {"method": "POST", "path": "/v1.47/containers/c0ffee/attach"},
            "output_captured": true,
        });
        let more = match event {
            "attach.start" => {
                json!({"decision": "allow", "reasons": [], "warnings": [], "policy_hash": "sha256:p",
                                     "recording": {"path": format!("sessions/20260101-{id}.cast")}})
            }
            _ => json!({"reason": "exited", "exit_code": 0, "duration_ms": 7,
                        "bytes": {"stdin": 3, "stdout": 42, "stderr": 0, "not_stored": 0},
                        "recording": {"path": format!("sessions/20260101-{id}.cast"), "bytes": 9, "sha256": "00"}}),
        };
        merge(&mut r, more);
        merge(&mut r, extra);
        r
    }

    /// A log with an exec and four attaches: one recorded and detached from,
    /// one denied, one cut by a killed execgate (its end as the next execgate
    /// writes it), one whose recording failed.
    fn mixed() -> Vec<Value> {
        let mut records = session_of(A, 1, 2, None);
        records.extend([
            attach_record(4, "attach.start", X, json!({"process": {"command": ["/bin/sh", "-l", "\u{1b}]0;t\u{7}"], "user": ""}})),
            json!({"seq": 5, "time": "t", "event": "recording.checkpoint", "attach_id": X,
                   "recording": {"path": format!("sessions/20260101-{X}.cast"), "bytes": 10, "sha256": "00"}}),
            attach_record(6, "attach.start", Y, json!({"decision": "deny", "recording": null,
                "process": {"command": ["bash"], "user": "root"},
                "reasons": ["attach to a shell running as root is not allowed"]})),
            attach_record(7, "attach.start", Z, json!({"tty": false,
                "recording": {"path": format!("sessions/20260101-{Z}.jsonl")},
                "attach": {"stdin": false, "stdout": true, "stderr": true, "logs": true, "stream": true,
                           "detach_keys": null}})),
            attach_record(8, "attach.end", X, json!({"reason": "detached", "exit_code": null})),
            json!({"seq": 9, "time": "2026-01-01T00:00:09Z", "event": "attach.end", "attach_id": Z,
                   "reason": "incomplete", "exit_code": null,
                   "detail": "execgate stopped without ending this session (killed or crashed)"}),
            attach_record(10, "attach.start", W, json!({})),
            attach_record(11, "attach.end", W, json!({"reason": "recording_failed", "exit_code": 137,
                "recording": null, "recording_error": "write failed: disk full"})),
        ]);
        records
    }

    #[test]
    fn request_denials_are_listed_beside_sessions() {
        let dir = Dir::new(
            &[
                json!({"seq": 1, "time": "t1", "event": "request", "decision": "deny", "reasons": ["privileged containers are not allowed"],
                   "method": "POST", "route": "ContainerCreate", "path": "/v1.41/containers/create", "container": null,
                   "caller": {"uid": 1000}}),
                json!({"seq": 2, "time": "t2", "event": "request", "decision": "allow", "reasons": [],
                   "method": "POST", "route": "ContainerStart", "path": "/containers/web/start",
                   "container": {"id": "c0", "name": "web"}, "caller": {"uid": 1000}}),
                json!({"seq": 3, "time": "t3", "event": "request", "decision": "deny", "reasons": ["no \u{1b}[2J plugins"],
                   "method": "POST", "route": null, "path": "/plugins/x\u{1b}/upgrade", "container": null, "caller": {"uid": 0}}),
            ],
            &[],
        );
        let out = list(dir.path()).expect("list");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(
            lines[1].contains("request")
                && lines[1].contains("denied")
                && lines[1].ends_with("POST ContainerCreate"),
            "{out}"
        );
        assert!(lines[2].contains("reasons: privileged containers are not allowed"), "{out}");
        assert!(!out.contains("ContainerStart"), "allowed requests are not listed: {out}");
        assert!(lines[3].ends_with("POST /plugins/x\\x1b/upgrade"), "{out}");
        assert!(!out.contains('\u{1b}'), "escaped: {out}");
    }

    #[test]
    fn attach_sessions_are_listed_beside_exec_sessions() {
        let listed = list(Dir::new(&mixed(), &[]).path()).expect("list");
        assert!(!listed.chars().any(|c| c.is_control() && c != '\n'), "{listed:?}");
        let lines: Vec<&str> = listed.lines().collect();
        let header = lines[0];
        for column in ["TIME", "KIND", "SESSION", "USER", "DECISION", "EXIT", "IN/OUT/ERR", "COMMAND"] {
            assert!(header.contains(column), "{header}");
        }
        let row = |id: &str| {
            let short: String = id.chars().take(if id.starts_with("attach-") { 19 } else { 12 }).collect();
            lines
                .iter()
                .position(|l| l.contains(&short))
                .unwrap_or_else(|| panic!("no row for {id}: {listed}"))
        };
        let exec = lines[row(A)];
        assert!(exec.starts_with("2026-01-01T00:00:02Z") && exec.contains(" exec "), "{exec}");
        assert!(exec.contains("0 (exited)") && exec.ends_with("sh -c echo hi"), "{exec}");
        let x = lines[row(X)];
        assert!(x.starts_with("2026-01-01T00:00:04Z") && x.contains(" attach attach-1111aaaa1111 "), "{x}");
        assert!(x.contains("uid 1000 (login 1001)") && x.contains("web") && x.contains("(default)"), "{x}");
        assert!(x.contains("allowed") && x.contains("- (detached)") && x.contains("3/42/0"), "{x}");
        assert!(x.ends_with("/bin/sh -l \\x1b]0;t\\x07"), "{x}");
        let y = row(Y);
        assert!(lines[y].contains(" attach ") && lines[y].contains(" root ") && lines[y].ends_with("bash"));
        assert!(lines[y].contains("denied"), "{listed}");
        assert_eq!(lines[y + 1], "    reasons: attach to a shell running as root is not allowed");
        let z = lines[row(Z)];
        assert!(z.contains("- (incomplete)") && !z.contains("3/42/0"), "{z}");
        let w = lines[row(W)];
        assert!(w.contains("137 (recording_failed)") && w.contains("3/42/0"), "{w}");
        // In the order they started.
        assert!(row(A) < row(X) && row(X) < row(Y) && row(Y) < row(Z) && row(Z) < row(W), "{listed}");
        assert_eq!(lines.len(), 7, "a header, five sessions, one reasons line: {listed}");
    }

    #[test]
    fn an_attach_session_is_found_by_its_id_or_a_prefix_with_its_records_and_transcript() {
        let cast = "{\"version\":2,\"width\":80,\"height\":24}\n[0.5,\"o\",\"$ \\u001b[1mid\\r\\n\"]\n\
                    [0.6,\"i\",\"id\\r\"]\n";
        let frames = format!(
            "{{\"execgate_recording\":1,\"attach_id\":\"{Z}\",\"command\":[\"/bin/sh\",\"-l\"],\"tty\":false}}\n\
             {{\"t\":0.2,\"s\":\"stdout\",\"d\":\"log line\\n\"}}\n"
        );
        let x_path = format!("sessions/20260101-{X}.cast");
        let z_path = format!("sessions/20260101-{Z}.jsonl");
        let dir = Dir::new(&mixed(), &[(&x_path, cast), (&z_path, &frames)]);

        let shown = session(dir.path(), "attach-1111a").expect("a prefix of an attach id");
        assert!(shown.starts_with(&format!("attach {X}\n\n#4 ")), "{shown}");
        assert!(!shown.contains("exec.create") && !shown.contains(Y) && !shown.contains(A), "{shown}");
        assert!(
            shown.contains(
                "#4 2026-01-01T00:00:04Z attach.start allow: PID 1 /bin/sh -l \\x1b]0;t\\x07 as (default) in \
                 web (caller uid 1000 (login 1001))\n    attach: stdin stdout stderr stream; tty; detach keys \
                 ctrl-p,ctrl-q\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("#5 t recording.checkpoint: 10 bytes\n"), "{shown}");
        assert!(
            shown.contains("#8 2026-01-01T00:00:08Z attach.end: reason=detached exit_code=- duration_ms=7\n")
        );
        assert!(shown.contains("    bytes: stdin 3, stdout 42, stderr 0, not stored 0\n"), "{shown}");
        assert!(shown.contains(&format!("transcript ({x_path}):\n")), "{shown}");
        assert!(shown.contains("    0.500 output | $ \\x1b[1mid\n    0.600 stdin  | id\\r\n"), "{shown}");
        assert_eq!(session(dir.path(), X).expect("the full id"), shown);

        let cut = session(dir.path(), Z).expect("an attach cut by a crash");
        assert!(cut.contains("attach: stdout stderr logs stream; no tty\n"), "{cut}");
        assert!(cut.contains("attach.end: reason=incomplete exit_code=- duration_ms=-\n"), "{cut}");
        assert!(cut.contains("    detail: execgate stopped without ending this session"), "{cut}");
        assert!(!cut.contains("bytes:"), "an incomplete end carries no counts: {cut}");
        assert!(cut.contains("    0.200 stdout | log line\n"), "{cut}");

        let denied = session(dir.path(), Y).expect("a denied attach");
        assert!(denied.contains("attach.start deny: PID 1 bash as root in web"), "{denied}");
        assert!(
            denied.contains("    reason: attach to a shell running as root is not allowed\n"),
            "{denied}"
        );
        assert!(denied.ends_with("\n(no recording)\n"), "{denied}");

        let failed = session(dir.path(), W).expect("an attach whose recording failed");
        assert!(failed.contains("    recording error: write failed: disk full\n"), "{failed}");

        // Prefixes across both kinds: ambiguous ones list every id they match.
        let err = format!("{:#}", session(dir.path(), "attach-1111").expect_err("ambiguous"));
        assert!(err.contains("ambiguous") && err.contains(X) && err.contains(Y) && !err.contains(A), "{err}");
        let err = format!("{:#}", session(dir.path(), "a").expect_err("ambiguous"));
        assert!(err.contains("5 sessions") && err.contains(A) && err.contains(W), "{err}");
        let exec = session(dir.path(), "aaaa").expect("the exec");
        assert!(exec.starts_with(&format!("exec {A}\n")) && !exec.contains("attach"), "{exec}");
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
