//! Differential test of "what was judged is what runs": random exec bodies
//! spelled the way Go's `encoding/json` allows — mixed case, duplicated keys,
//! `\u` escapes, Unicode case folding (ſ, K), `null` — go through execgate to
//! the real daemon. The generator knows each body's meaning independently of
//! execgate's decoder; for every body the daemon's own exec inspect, the
//! process's `env` and `pwd`, and execgate's logged judgement must all agree
//! with it.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{Container, Gate, Rng, docker_sock, read_response};
use serde_json::{Value, json};

/// The meaning a body is generated from.
#[derive(Debug, Clone)]
struct Intent {
    user: String,
    privileged: bool,
    tty: bool,
    attach_stderr: bool,
    env: Vec<String>,
    working_dir: String,
    cmd: Vec<String>,
}

/// A key spelled another way that Go still matches to `field`.
fn spell(rng: &mut Rng, field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        let c = match rng.below(4) {
            0 => c.to_ascii_lowercase(),
            1 => c.to_ascii_uppercase(),
            _ => c,
        };
        let folded = match c {
            's' | 'S' if rng.chance(30) => "ſ".to_owned(),
            'k' | 'K' if rng.chance(50) => "\u{212A}".to_owned(),
            _ if rng.chance(15) => format!("\\u{:04x}", c as u32),
            _ => c.to_string(),
        };
        out.push_str(&folded);
    }
    out
}

/// A JSON string literal, sometimes with `\u` escapes in place of characters.
fn string_literal(rng: &mut Rng, text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x10000 && rng.chance(10) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list_literal(rng: &mut Rng, items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|i| string_literal(rng, i)).collect();
    format!("[{}]", parts.join(","))
}

/// Entries for one field: maybe a decoy first (a later duplicate wins), the
/// intended value, and for strings and bools maybe a `null` after (it keeps).
fn field_entries(rng: &mut Rng, field: &str, value: &str, decoy: &str, nullable_keeps: bool) -> Vec<String> {
    let mut entries = Vec::new();
    if rng.chance(35) {
        entries.push(format!("\"{}\":{decoy}", spell(rng, field)));
    }
    entries.push(format!("\"{}\":{value}", spell(rng, field)));
    if nullable_keeps && rng.chance(30) {
        entries.push(format!("\"{}\":null", spell(rng, field)));
    }
    entries
}

fn body_for(rng: &mut Rng, intent: &Intent) -> String {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let user = string_literal(rng, &intent.user);
    groups.push(field_entries(rng, "User", &user, "\"root\"", true));
    groups.push(field_entries(
        rng,
        "Privileged",
        &intent.privileged.to_string(),
        &(!intent.privileged).to_string(),
        true,
    ));
    groups.push(field_entries(rng, "Tty", &intent.tty.to_string(), &(!intent.tty).to_string(), true));
    groups.push(field_entries(rng, "AttachStdout", "true", "false", true));
    groups.push(field_entries(rng, "AttachStderr", &intent.attach_stderr.to_string(), "true", true));
    let env = list_literal(rng, &intent.env);
    groups.push(field_entries(rng, "Env", &env, "[\"DECOY=1\"]", false));
    let dir = string_literal(rng, &intent.working_dir);
    groups.push(field_entries(rng, "WorkingDir", &dir, "\"/root\"", true));
    let cmd = list_literal(rng, &intent.cmd);
    groups.push(field_entries(rng, "Cmd", &cmd, "[\"id\"]", false));
    if rng.chance(30) {
        groups.push(field_entries(rng, "DetachKeys", "\"ctrl-x,x\"", "\"ctrl-p,ctrl-q\"", true));
    }
    // Fields in any order; each field's own entries keep theirs.
    for i in (1..groups.len()).rev() {
        let j = rng.below(i + 1);
        groups.swap(i, j);
    }
    format!("{{{}}}", groups.concat().join(","))
}

fn intent(rng: &mut Rng) -> Intent {
    let user = rng
        .pick(&["", "app", "1000", "app:app", "nobody", "65534:65534", "root", "0", "00", "+0"])
        .to_string();
    let env_values = ["plain", "with space", "ünïcødé", "quote\"d", "back\\slash", "tab\tin", "x=y=z"];
    let env = (0..rng.below(4)).map(|i| format!("EG_VAR_{i}={}", rng.pick(&env_values))).collect();
    Intent {
        user,
        privileged: rng.chance(15),
        tty: rng.chance(40),
        attach_stderr: rng.chance(50),
        env,
        working_dir: rng.pick(&["", "/tmp", "/home/app", "/bin"]).to_string(),
        cmd: vec!["sh".to_owned(), "-c".to_owned(), "env; echo PWD_IS=$(pwd)".to_owned()],
    }
}

fn exchange(socket: &Path, raw: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(raw).expect("write");
    let (head, body) = read_response(&mut stream);
    (head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status"), body)
}

fn daemon_exec(id: &str) -> Value {
    let (status, body) = exchange(
        Path::new(docker_sock()),
        format!("GET /exec/{id}/json HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("json")
}

/// Starts an exec through the gate and returns its output (frames removed).
fn run_through(gate: &Gate, id: &str, tty: bool) -> String {
    let request = common::start_request("/v1.41", id, &format!("{{\"Detach\":false,\"Tty\":{tty}}}"), true);
    let mut stream = gate.connect();
    stream.write_all(&request).expect("write");
    let mut data = Vec::new();
    stream.read_to_end(&mut data).expect("read");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(data.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&data));
    let mut stream_bytes = &data[split..];
    if tty {
        return String::from_utf8_lossy(stream_bytes).replace('\r', "");
    }
    let mut out = Vec::new();
    while stream_bytes.len() >= 8 {
        let len =
            u32::from_be_bytes([stream_bytes[4], stream_bytes[5], stream_bytes[6], stream_bytes[7]]) as usize;
        out.extend_from_slice(&stream_bytes[8..8 + len]);
        stream_bytes = &stream_bytes[8 + len..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn random_go_spellings_mean_the_same_to_execgate_and_the_daemon() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--log-format", "json"]);
    common::require_daemon();
    let c = Container::run("differential", &[]);
    let (mut allowed, mut denied) = (0, 0);
    for seed in 0..48u64 {
        let mut rng = Rng(seed);
        let intent = intent(&mut rng);
        let body = body_for(&mut rng, &intent);
        let request = format!(
            "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            c.name,
            body.len()
        );
        let (status, answer) = exchange(&gate.socket, request.as_bytes());
        let root = matches!(intent.user.as_str(), "root" | "0" | "00" | "+0");
        let context =
            format!("seed {seed}: {intent:?}\nbody: {body}\nanswer: {}", String::from_utf8_lossy(&answer));
        if root || intent.privileged {
            assert_eq!(status, 403, "{context}");
            denied += 1;
            continue;
        }
        assert_eq!(status, 201, "{context}");
        allowed += 1;
        let id =
            serde_json::from_slice::<Value>(&answer).expect("json")["Id"].as_str().expect("Id").to_owned();

        // The daemon's own record.
        let pc = &daemon_exec(&id)["ProcessConfig"];
        let spec = if intent.user.is_empty() { "app" } else { intent.user.as_str() };
        // The daemon gets the identity pinned to the numbers execgate judged.
        let pinned = if matches!(spec, "nobody" | "65534:65534") { "65534:65534" } else { "1000:1000" };
        assert_eq!(pc["user"], pinned, "{context}");
        assert_eq!(pc["privileged"], false, "{context}");
        assert_eq!(pc["tty"], intent.tty, "{context}");
        assert_eq!(pc["entrypoint"], intent.cmd[0], "{context}");
        assert_eq!(pc["arguments"], json!(intent.cmd[1..]), "{context}");

        // What actually ran.
        let output = run_through(&gate, &id, intent.tty);
        for entry in &intent.env {
            assert!(output.lines().any(|l| l == entry), "{context}\nmissing {entry:?} in:\n{output}");
        }
        assert!(!output.contains("DECOY=1"), "{context}\n{output}");
        let pwd = if intent.working_dir.is_empty() { "/" } else { intent.working_dir.as_str() };
        assert!(output.lines().any(|l| l == format!("PWD_IS={pwd}")), "{context}\n{output}");

        // What execgate judged (its structured decision log).
        let log = gate.log_text();
        let judged = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"] == "exec allowed" && v["action"] == "create")
            .nth(allowed - 1)
            .unwrap_or_else(|| panic!("{context}\nno judgement logged:\n{log}"));
        assert_eq!(judged["user"], spec, "{context}");
        assert_eq!(judged["cmd"], intent.cmd.join(" "), "{context}");
    }
    assert!(
        allowed >= 20 && denied >= 8,
        "the generator should exercise both outcomes: {allowed} allowed, {denied} denied"
    );
}
