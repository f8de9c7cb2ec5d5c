//! The audit trail against the real daemon: what records and recordings hold,
//! and that `audit verify` passes on an intact log and fails on any tampering.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Container, Gate, TempDir, audit_records as records, direct_docker, docker_sock, exec_end_of as end_of,
    ok_stdout, stream_bytes,
};
use serde_json::Value;

fn execgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_execgate")).args(args).output().expect("run execgate")
}

fn verify(dir: &Path, anchor: Option<&Path>) -> (bool, String) {
    let mut args = vec!["audit", "verify", dir.to_str().expect("utf8")];
    if let Some(anchor) = anchor {
        args.extend(["--anchor", anchor.to_str().expect("utf8")]);
    }
    let out = execgate(&args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn recording_of(dir: &Path, end: &Value) -> String {
    let path = end["recording"]["path"].as_str().expect("recording path");
    std::fs::read_to_string(dir.join(path)).expect("recording file")
}

#[test]
fn a_session_is_recorded_with_its_streams_exit_code_and_identity() {
    let gate = Gate::start();
    let c = Container::run("record", &[]);
    let out = gate.run_stdin(
        &["exec", "-i", &c.name, "sh", "-c", "read line; echo \"out:$line\"; echo err-marker >&2; exit 7"],
        b"stdin-marker\n",
    );
    assert_eq!(out.status.code(), Some(7));
    let end = end_of(&gate.audit, "out:$line");
    assert_eq!(end["reason"], "exited");
    assert_eq!(end["exit_code"], 7);
    assert_eq!(end["container"]["name"], c.name.as_str());
    assert_eq!(end["user"]["uid"], 1000);
    assert!(end["caller"]["exe"].as_str().is_some_and(|e| e.ends_with("docker")), "{end}");
    let recording = recording_of(&gate.audit, &end);
    assert_eq!(stream_bytes(&recording, "stdin"), b"stdin-marker\n");
    assert_eq!(stream_bytes(&recording, "stdout"), b"out:stdin-marker\n");
    assert_eq!(stream_bytes(&recording, "stderr"), b"err-marker\n");
    assert_eq!(end["bytes"]["stdout"], 17);
    assert_eq!(end["bytes"]["stderr"], 11);
    let (ok, text) = verify(&gate.audit, None);
    assert!(ok, "{text}");
}

#[test]
fn a_denied_exec_is_recorded_with_command_and_reasons() {
    let gate = Gate::start();
    let c = Container::run("deniedrec", &[]);
    let out = gate.run(&["exec", "-u", "root", &c.name, "echo", "denied-marker"]);
    assert!(!out.status.success());
    let all = records(&gate.audit);
    let denial = all
        .iter()
        .find(|r| r["event"] == "exec.create" && r["decision"] == "deny")
        .unwrap_or_else(|| panic!("no denial in {all:?}"));
    assert_eq!(denial["command"], serde_json::json!(["echo", "denied-marker"]));
    assert!(denial["reasons"][0].as_str().is_some_and(|r| r.contains("resolves to uid 0")), "{denial}");
    assert_eq!(denial["user"]["requested"], "root");
    assert!(denial["policy_hash"].as_str().is_some_and(|h| h.starts_with("sha256:")));
    assert!(!all.iter().any(|r| r["event"] == "exec.start"), "a denied create must not start anything");
}

#[test]
fn tty_sessions_are_asciicast_v2_with_resizes() {
    let gate = Gate::start();
    let c = Container::run("cast", &[]);
    let status = Command::new("script")
        .args([
            "-qec",
            &format!("stty cols 100 rows 30; docker exec -t {} sh -c 'echo cast-marker; sleep 0.3'", c.name),
            "/dev/null",
        ])
        .env("DOCKER_HOST", gate.host())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    assert!(status.status.success());
    let end = end_of(&gate.audit, "cast-marker");
    let path = end["recording"]["path"].as_str().expect("path");
    assert!(path.ends_with(".cast"), "{path}");
    let cast = recording_of(&gate.audit, &end);
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header json");
    assert_eq!(header["version"], 2);
    assert!(
        header["width"].is_u64() && header["height"].is_u64() && header["timestamp"].is_u64(),
        "{header}"
    );
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(l).expect("event")).collect();
    for event in &events {
        let e = event.as_array().expect("event array");
        assert!(e.len() == 3 && e[0].is_f64() || e[0].is_u64(), "{event}");
        assert!(["o", "i", "r", "m", "x"].contains(&e[1].as_str().expect("code")), "{event}");
        assert!(e[2].is_string(), "{event}");
    }
    let output: String = events.iter().filter(|e| e[1] == "o").map(|e| e[2].as_str().unwrap_or("")).collect();
    assert!(output.contains("cast-marker"), "{output}");
    // asciinema itself reads it back.
    let path = gate.audit.join(end["recording"]["path"].as_str().expect("path"));
    let played = Command::new("asciinema")
        .arg("cat")
        .arg(&path)
        .output()
        .expect("asciinema (scripts/testbed.sh installs it)");
    assert!(played.status.success(), "{}", String::from_utf8_lossy(&played.stderr));
    assert!(String::from_utf8_lossy(&played.stdout).contains("cast-marker"));
    // The CLI sizes the terminal through POST /exec/{id}/resize.
    assert!(events.iter().any(|e| e[1] == "r" && e[2] == "100x30"), "{cast}");
}

#[test]
fn binary_output_round_trips_exactly() {
    let gate = Gate::start();
    let c = Container::run("binary", &[]);
    ok_stdout(
        &direct_docker()
            .args(["exec", &c.name, "sh", "-c", "head -c 65536 /dev/urandom > /tmp/bin"])
            .output()
            .expect("make"),
    );
    let expected = direct_docker().args(["exec", &c.name, "cat", "/tmp/bin"]).output().expect("read").stdout;
    assert_eq!(expected.len(), 65536);
    let out = gate.run(&["exec", &c.name, "cat", "/tmp/bin"]);
    assert_eq!(out.stdout, expected);
    let end = end_of(&gate.audit, "/tmp/bin");
    assert_eq!(stream_bytes(&recording_of(&gate.audit, &end), "stdout"), expected);
}

#[test]
fn record_output_mode_keeps_stdin_out_and_the_cap_counts_the_rest() {
    let gate =
        Gate::start_with(Path::new(docker_sock()), &["--record", "output", "--record-max-bytes", "1000"]);
    let c = Container::run("cap", &[]);
    let out = gate.run_stdin(
        &["exec", "-i", &c.name, "sh", "-c", "cat >/dev/null; head -c 10000 /dev/zero | tr '\\0' x"],
        b"secret-typed\n",
    );
    assert_eq!(out.stdout.len(), 10000);
    let end = end_of(&gate.audit, "/dev/zero");
    let recording = recording_of(&gate.audit, &end);
    assert!(stream_bytes(&recording, "stdin").is_empty());
    assert!(!recording.contains("secret-typed"));
    assert_eq!(stream_bytes(&recording, "stdout").len(), 1000);
    assert!(recording.contains("recording cap of 1000 bytes reached"), "{recording}");
    assert_eq!(end["bytes"]["stdout"], 10000);
    assert_eq!(end["bytes"]["stdin"], 13);
    assert_eq!(end["bytes"]["not_stored"], 13 + 9000);
}

#[test]
fn secret_looking_env_values_are_redacted() {
    let gate = Gate::start();
    let c = Container::run("redact", &[]);
    ok_stdout(&gate.run(&[
        "exec",
        "-e",
        "DB_PASSWORD=hunter2",
        "-e",
        "api_token=tok123",
        "-e",
        "PLAIN=visible",
        &c.name,
        "true",
    ]));
    let text: String = records(&gate.audit).iter().map(|r| r.to_string()).collect();
    assert!(text.contains("DB_PASSWORD=[REDACTED]") && text.contains("api_token=[REDACTED]"), "{text}");
    assert!(text.contains("PLAIN=visible"));
    assert!(!text.contains("hunter2") && !text.contains("tok123"));
}

// Regression: `--redact-env` replaced the default list, so naming one more
// variable silently stopped redacting passwords and tokens.
#[test]
fn redact_env_adds_to_the_default_names() {
    let gate =
        Gate::start_with(std::path::Path::new(common::docker_sock()), &["--redact-env", "MY_PIN,other"]);
    let c = Container::run("redactadd", &[]);
    ok_stdout(&gate.run(&[
        "exec",
        "-e",
        "MY_PIN=pin-secret-value",
        "-e",
        "DB_PASSWORD=hunter2",
        "-e",
        "PLAIN=seen",
        &c.name,
        "true",
    ]));
    // Values no hash or id can contain by chance (a bare "1234" sometimes did).
    let text: String = records(&gate.audit).iter().map(|r| r.to_string()).collect();
    assert!(text.contains("MY_PIN=[REDACTED]") && text.contains("DB_PASSWORD=[REDACTED]"), "{text}");
    assert!(
        !text.contains("pin-secret-value") && !text.contains("hunter2") && text.contains("PLAIN=seen"),
        "{text}"
    );

    // Dropping the defaults is explicit.
    let only = Gate::start_with(
        std::path::Path::new(common::docker_sock()),
        &["--redact-env", "MY_PIN", "--no-default-redact"],
    );
    ok_stdout(&only.run(&[
        "exec",
        "-e",
        "MY_PIN=pin-secret-value",
        "-e",
        "DB_PASSWORD=hunter2",
        &c.name,
        "true",
    ]));
    let text: String = records(&only.audit).iter().map(|r| r.to_string()).collect();
    assert!(text.contains("MY_PIN=[REDACTED]") && text.contains("DB_PASSWORD=hunter2"), "{text}");
}

#[test]
fn detached_execs_get_their_exit_code_when_they_end() {
    let gate = Gate::start();
    let c = Container::run("detachrec", &[]);
    ok_stdout(&gate.run(&["exec", "-d", &c.name, "sh", "-c", "sleep 0.5; exit 4"]));
    let end = end_of(&gate.audit, "exit 4");
    assert_eq!(end["reason"], "detached");
    assert_eq!(end["exit_code"], 4);
    assert_eq!(end["output_captured"], false);
    let start = records(&gate.audit).into_iter().find(|r| r["event"] == "exec.start").expect("start");
    assert_eq!(start["output_captured"], false);
}

/// Copies an audit dir so each tampering starts from the intact log.
fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success());
}

fn log_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit-")))
        .collect();
    files.sort();
    files.pop().expect("a log file")
}

fn rewrite_lines(file: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> =
        std::fs::read_to_string(file).expect("read").lines().map(str::to_owned).collect();
    edit(&mut lines);
    std::fs::write(file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
}

#[test]
fn verify_detects_every_kind_of_tampering() {
    let work = TempDir::new("tamper");
    let original = work.path().join("original");
    {
        let gate =
            Gate::start_with(Path::new(docker_sock()), &["--audit-dir", original.to_str().expect("utf8")]);
        let c = Container::run("tamper", &[]);
        for i in 0..3 {
            ok_stdout(&gate.run(&["exec", &c.name, "echo", &format!("tamper-{i}")]));
        }
        let _ = gate.run(&["exec", "-u", "root", &c.name, "id"]);
        end_of(&original, "tamper-2");
        assert_eq!(gate.stop_and_wait(), Some(0));
    }
    let (ok, text) = verify(&original, None);
    assert!(ok && text.contains("anchors"), "{text}");

    let case = |name: &str, tamper: &dyn Fn(&Path)| {
        let dir = work.path().join(name);
        copy_dir(&original, &dir);
        tamper(&dir);
        let (ok, text) = verify(&dir, None);
        assert!(!ok && text.starts_with("BROKEN at"), "{name}: verify passed a tampered log: {text}");
        text
    };
    // One byte changed in a record.
    case("byte", &|dir| {
        let file = log_file(dir);
        let mut bytes = std::fs::read(&file).expect("read");
        let at = bytes.windows(9).position(|w| w == b"tamper-1\"").expect("marker");
        bytes[at + 7] = b'9';
        std::fs::write(&file, bytes).expect("write");
    });
    case("delete", &|dir| rewrite_lines(&log_file(dir), |l| drop(l.remove(3))));
    case("insert", &|dir| rewrite_lines(&log_file(dir), |l| l.insert(2, l[2].clone())));
    case("reorder", &|dir| rewrite_lines(&log_file(dir), |l| l.swap(2, 3)));
    // The last lines cut: the chain itself is fine, the shutdown anchor is not.
    let text = case("tail", &|dir| rewrite_lines(&log_file(dir), |l| l.truncate(l.len() - 2)));
    assert!(text.contains("the tail was cut"), "{text}");
    // A recording edited after the fact.
    case("recording", &|dir| {
        let sessions = dir.join("sessions");
        let first = std::fs::read_dir(&sessions)
            .expect("sessions")
            .filter_map(|e| e.ok())
            .next()
            .expect("a recording")
            .path();
        let mut text = std::fs::read_to_string(&first).expect("read");
        text = text.replacen("tamper", "tampir", 1);
        std::fs::write(&first, text).expect("write");
    });
    // An anchor kept elsewhere catches a tail cut the local anchor file hides.
    let shipped = work.path().join("shipped-anchors.jsonl");
    std::fs::copy(original.join("anchors.jsonl"), &shipped).expect("ship anchors");
    let dir = work.path().join("rewritten");
    copy_dir(&original, &dir);
    rewrite_lines(&log_file(&dir), |l| l.truncate(l.len() - 2));
    std::fs::remove_file(dir.join("anchors.jsonl")).expect("remove local anchors");
    assert!(
        verify(&dir, None).0,
        "without anchors a cut tail is invisible (why anchors are shipped off the host)"
    );
    assert!(!verify(&dir, Some(&shipped)).0);
}

#[test]
fn rotation_chains_files_and_retention_keeps_verify_working() {
    let work = TempDir::new("rotate");
    let dir = work.path().join("audit");
    let gate = Gate::start_with(
        Path::new(docker_sock()),
        &["--audit-dir", dir.to_str().expect("utf8"), "--audit-max-bytes", "3000", "--audit-retain", "3"],
    );
    let c = Container::run("rotate", &[]);
    for i in 0..12 {
        ok_stdout(&gate.run(&["exec", &c.name, "echo", &format!("rot-{i}")]));
    }
    end_of(&dir, "rot-11");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("audit-"))
        .collect();
    assert_eq!(files.len(), 3, "retention keeps 3 files");
    for file in &files {
        let first: Value = serde_json::from_str(
            std::fs::read_to_string(file.path()).expect("read").lines().next().expect("line"),
        )
        .expect("json");
        assert_eq!(first["event"], "audit.checkpoint", "{}", file.path().display());
    }
    let (ok, text) = verify(&dir, None);
    assert!(ok, "{text}");
}

#[test]
fn a_live_recording_is_checkpointed_so_a_crash_leaves_it_covered() {
    let work = TempDir::new("livecheckpoint");
    let dir = work.path().join("audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", dir.to_str().expect("utf8")]);
    let c = Container::run("live", &[]);
    let mut session = gate
        .docker()
        .args(["exec", &c.name, "sh", "-c", "echo live-marker; sleep 30"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("session");
    // Recordings are synced and hashed every 10 s while they run.
    let deadline = Instant::now() + Duration::from_secs(25);
    let checkpoint = loop {
        if let Some(found) = records(&dir).into_iter().find(|r| r["event"] == "recording.checkpoint") {
            break found;
        }
        assert!(Instant::now() < deadline, "no recording.checkpoint within 25 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    // execgate dies mid-session; what the checkpoint covers must still verify.
    Command::new("kill").args(["-KILL", &gate.pid().to_string()]).status().expect("kill");
    let _ = session.kill();
    let _ = session.wait();
    let path = dir.join(checkpoint["recording"]["path"].as_str().expect("path"));
    let bytes = std::fs::read(&path).expect("recording");
    let covered = checkpoint["recording"]["bytes"].as_u64().expect("bytes") as usize;
    assert!(bytes.len() >= covered && String::from_utf8_lossy(&bytes[..covered]).contains("live-marker"));
    let (ok, text) = verify(&dir, None);
    assert!(ok, "{text}");
    // An edit inside the covered part is caught even though no exec.end exists.
    let mut edited = bytes.clone();
    let at = String::from_utf8_lossy(&bytes[..covered]).find("live-marker").expect("marker");
    edited[at] = b'L';
    std::fs::write(&path, edited).expect("edit");
    let (ok, text) = verify(&dir, None);
    assert!(!ok && text.contains("does not match its hash"), "{text}");
}

// Regression: a refused create with an 850 KB `Cmd` wrote a 680 KB record; a
// client could fill the audit disk with refusals.
#[test]
fn request_fields_in_records_are_capped_with_their_length_and_hash() {
    use std::io::{Read, Write};
    let gate = Gate::start();
    let c = Container::run("capped", &[]);
    let arg = "x".repeat(850 * 1024);
    let body = format!(r#"{{"Cmd":["{arg}"],"User":"root"}}"#);
    let mut stream = std::os::unix::net::UnixStream::connect(&gate.socket).expect("connect");
    let request = format!(
        "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        c.name,
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{}", &answer[..answer.len().min(300)]);
    let denial = records(&gate.audit)
        .into_iter()
        .find(|r| r["event"] == "exec.create" && r["decision"] == "deny")
        .expect("the denial is recorded");
    let size = denial.to_string().len();
    assert!(size < 16 * 1024, "a {size}-byte record");
    let cmd_json = serde_json::to_string(&vec![arg]).expect("json");
    let capped = &denial["command"]["capped"];
    assert_eq!(capped["bytes"], cmd_json.len());
    assert_eq!(capped["sha256"], common::sha256_hex(cmd_json.as_bytes()));
    assert!(verify(&gate.audit, None).0, "the log still verifies");
}
