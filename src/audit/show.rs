//! `execgate audit show`: the sessions in an audit directory, and one
//! session's records and transcript.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

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

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn command(record: &Value) -> String {
    record["command"]
        .as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "-".into())
}

fn caller(record: &Value) -> String {
    let c = &record["caller"];
    match c["loginuid"].as_u64() {
        Some(login) if Some(login) != c["uid"].as_u64() => format!("uid {} (login {login})", text(&c["uid"])),
        _ => format!("uid {}", text(&c["uid"])),
    }
}

/// A table of sessions: time, caller, container, command, decision, exit.
pub fn list(dir: &Path) -> Result<String> {
    let mut rows: BTreeMap<u64, [String; 7]> = BTreeMap::new();
    let mut by_exec: BTreeMap<String, u64> = BTreeMap::new();
    for r in records(dir)? {
        let seq = r["seq"].as_u64().unwrap_or(0);
        let exec_id = r["exec_id"].as_str().map(str::to_owned);
        match r["event"].as_str() {
            Some("exec.create") if r["decision"] == "deny" => {
                rows.insert(seq, row(&r, "-", "denied at create"));
            }
            Some("exec.start") => {
                let id = exec_id.clone().unwrap_or_default();
                let decision = if r["decision"] == "allow" { "allowed" } else { "denied at start" };
                rows.insert(seq, row(&r, &id[..id.len().min(12)], decision));
                by_exec.insert(id, seq);
            }
            Some("exec.end") => {
                if let Some(row) = exec_id.and_then(|id| by_exec.get(&id)).and_then(|s| rows.get_mut(s)) {
                    row[6] = format!("{} ({})", text(&r["exit_code"]), text(&r["reason"]));
                }
            }
            _ => {}
        }
    }
    let mut out = String::from(
        "TIME                         EXEC          CALLER            CONTAINER         DECISION          EXIT              COMMAND\n",
    );
    for [time, id, who, container, decision, cmd, exit] in rows.into_values() {
        let _ =
            writeln!(out, "{time:<28} {id:<13} {who:<17} {container:<17} {decision:<17} {exit:<17} {cmd}");
    }
    Ok(out)
}

fn row(r: &Value, id: &str, decision: &str) -> [String; 7] {
    [
        text(&r["time"]),
        id.to_owned(),
        caller(r),
        text(&r["container"]["name"]),
        decision.to_owned(),
        command(r),
        "-".to_owned(),
    ]
}

/// One exec's records, then its transcript.
pub fn session(dir: &Path, exec_id: &str) -> Result<String> {
    let mut out = String::new();
    let mut recording = None;
    for r in
        records(dir)?.into_iter().filter(|r| r["exec_id"].as_str().is_some_and(|id| id.starts_with(exec_id)))
    {
        let _ = writeln!(
            out,
            "{} {} {} {}",
            text(&r["time"]),
            text(&r["event"]),
            text(&r.get("decision").cloned().unwrap_or(Value::Null)),
            match r["event"].as_str() {
                Some("exec.end") =>
                    format!("reason={} exit_code={}", text(&r["reason"]), text(&r["exit_code"])),
                _ => format!(
                    "{} as {} in {}",
                    command(&r),
                    text(&r["user"]["effective"]),
                    text(&r["container"]["name"])
                ),
            }
        );
        if let Some(path) = r["recording"]["path"].as_str() {
            recording = Some(path.to_owned());
        }
    }
    anyhow::ensure!(!out.is_empty(), "no records for exec {exec_id}");
    match recording {
        None => out.push_str("\n(no recording)\n"),
        Some(path) => {
            let text = std::fs::read_to_string(dir.join(&path))
                .with_context(|| format!("cannot read recording {path}"))?;
            let _ = writeln!(out, "\ntranscript ({path}):");
            out.push_str(&transcript(&text));
        }
    }
    Ok(out)
}

/// Renders a recording (asciicast or JSON lines) as readable text.
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
                (event.first().cloned(), stream.to_owned(), event.get(2).map(text).unwrap_or_default())
            }
            Value::Object(_) => {
                let data = match (line["d"].as_str(), line["b64"].as_str()) {
                    (Some(d), _) => d.to_owned(),
                    (None, Some(b)) => {
                        let bytes = BASE64.decode(b).unwrap_or_default();
                        format!(
                            "[{} bytes, not UTF-8: {}]",
                            bytes.len(),
                            String::from_utf8_lossy(&bytes).escape_debug()
                        )
                    }
                    _ => String::new(),
                };
                (Some(line["t"].clone()), text(&line["s"]), data)
            }
            _ => continue,
        };
        let t = t.and_then(|t| t.as_f64()).unwrap_or(0.0);
        for part in data.split_inclusive('\n') {
            let _ = write!(out, "{t:>9.3} {stream:<7}| {part}");
            if !part.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}
