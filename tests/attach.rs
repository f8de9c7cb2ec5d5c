//! Attach sessions against the real daemon: `POST /containers/{id}/attach` is
//! judged (`input.action == "attach"`) and recorded like an exec session: the
//! CLI's `run -i`, `start -ai` and `attach` (piped, and under a terminal with
//! its detach keys), raw TTY sessions with container resizes and the daemon's
//! detach keys, dockerode's attach without Upgrade, logs-only attaches and the
//! daemon's own refusals. Policy: a deny-all-attach pack, a pack that echoes
//! its input (the query read as Go reads it, the container, PID 1), and the
//! `attach_guard` example. What execgate cannot judge is refused before the
//! daemon sees it: `attach/ws`, a body or form body, a `;` or bad escape in
//! the query. Whether the daemon saw an attach is read from its own event
//! stream (it logs an `attach` event for each one it serves).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    Container, Gate, IMAGE, TempDir, direct_docker, docker_sock, frames, ok_stdout, read_response,
    read_until, records, stream_bytes, unique, verify_ok, wait_record,
};
use serde_json::{Value, json};

/// Denies every attach, and nothing else.
const DENY_ATTACH: &str =
    "package execgate\nimport rego.v1\ndeny contains \"no attach\" if input.action == \"attach\"\n";

/// Denies every attach with the facts it was judged on as the reason, so a
/// test can read back the policy input exactly.
const ECHO_INPUT: &str = r#"package execgate
import rego.v1
deny contains msg if {
	input.action == "attach"
	msg := json.marshal({"action": input.action, "attach": input.attach, "container": input.container, "process": input.process, "request": input.request, "caller": input.caller})
}
"#;

/// A gate in front of the daemon judging with `policy` alone.
fn gate_with_policy(dir: &TempDir, policy: &str) -> Gate {
    common::require_daemon();
    let file = dir.path().join("attach.rego");
    std::fs::write(&file, policy).expect("policy file");
    Gate::start_with(Path::new(docker_sock()), &["--policy", file.to_str().expect("utf8")])
}

/// Now as a Unix timestamp with nanoseconds, as `docker events --since` takes it.
fn now_stamp() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// How many `attach` events the daemon logged for `container` since `since`:
/// the daemon's own count of the attaches it served.
fn daemon_attaches(container: &str, since: &str) -> usize {
    let out = direct_docker()
        .args(["events", "--since", since, "--until", &now_stamp()])
        .args(["--filter", &format!("container={container}"), "--filter", "event=attach"])
        .args(["--format", "{{.Action}}"])
        .output()
        .expect("docker events");
    ok_stdout(&out).lines().filter(|l| l.trim() == "attach").count()
}

/// The full id of `container`, straight from the daemon.
fn full_id(container: &str) -> String {
    ok_stdout(&direct_docker().args(["inspect", "-f", "{{.Id}}", container]).output().expect("inspect"))
        .trim()
        .to_owned()
}

/// `docker inspect -f {{.State.Status}}`, straight from the daemon.
fn state(container: &str) -> String {
    ok_stdout(
        &direct_docker().args(["inspect", "-f", "{{.State.Status}}", container]).output().expect("inspect"),
    )
    .trim()
    .to_owned()
}

/// `docker create [args]` straight on the daemon, named `name`, removed on drop.
fn create(name: &str, args: &[&str]) -> Container {
    common::require_daemon();
    ok_stdout(&direct_docker().args(["create", "--name", name]).args(args).output().expect("docker create"));
    Container { name: name.to_owned() }
}

/// An attach request (raw HTTP/1.1) with optional extra headers and body.
fn attach_request(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: docker\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

const UPGRADE: &str = "Connection: Upgrade\r\nUpgrade: tcp\r\n";

/// Sends `raw` on a new connection to the gate; returns (status, head, body).
fn exchange(gate: &Gate, raw: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = gate.connect();
    stream.write_all(raw).expect("write request");
    let (head, body) = read_response(&mut stream);
    (status(&head), head, body)
}

fn status(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// The `message` of execgate's JSON error body (panics if it is not one).
fn message(head: &str, body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {head}{}", String::from_utf8_lossy(body)));
    value["message"].as_str().unwrap_or_else(|| panic!("no message in {value}")).to_owned()
}

/// True for `attach-` and 32 lower-case hex digits.
fn is_attach_id(id: &str) -> bool {
    id.strip_prefix("attach-").is_some_and(|hex| {
        hex.len() == 32 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The `attach.start` records about `container` (by name or id).
fn starts_for(dir: &Path, container: &str) -> Vec<Value> {
    records(dir).into_iter().filter(|r| r["event"] == "attach.start" && names(r, container)).collect()
}

fn names(record: &Value, container: &str) -> bool {
    record["container"]["name"].as_str().is_some_and(|n| n.trim_start_matches('/') == container)
        || record["container"]["id"] == container
}

/// Waits for the allowed `attach.start` about `container`, then its `attach.end`.
fn session_of(dir: &Path, container: &str) -> (Value, Value) {
    let start =
        wait_record(dir, &format!("attach.start allow for {container}"), Duration::from_secs(20), |r| {
            r["event"] == "attach.start" && r["decision"] == "allow" && names(r, container)
        });
    let id = start["attach_id"].as_str().expect("attach_id").to_owned();
    let end = wait_record(dir, &format!("attach.end of {id}"), Duration::from_secs(20), |r| {
        r["event"] == "attach.end" && r["attach_id"] == id.as_str()
    });
    (start, end)
}

/// The recording an `attach.end` names, checked against the size and hash it records.
fn recording_of(dir: &Path, end: &Value) -> String {
    let summary = &end["recording"];
    let path = summary["path"].as_str().unwrap_or_else(|| panic!("no recording in {end}"));
    assert!(path.starts_with("sessions/"), "{path}");
    let bytes = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("recording {path}: {e}"));
    assert_eq!(summary["bytes"], bytes.len() as u64, "{end}");
    assert_eq!(summary["sha256"].as_str(), Some(common::sha256_hex(&bytes).as_str()), "{end}");
    String::from_utf8(bytes).expect("a recording is UTF-8 text")
}

/// Checks a non-TTY recording's first line; returns its events.
fn jsonl_events(recording: &str, attach_id: &str) -> Vec<Value> {
    let mut lines = recording.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header line")).expect("header JSON");
    assert_eq!(header["execgate_recording"], 1, "{header}");
    assert_eq!(header["attach_id"], attach_id, "{header}");
    lines.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event not JSON ({e}): {l}"))).collect()
}

/// The `i` events of an asciicast, joined.
fn joined_input(events: &[Value]) -> String {
    events.iter().filter(|e| e[1] == "i").filter_map(|e| e[2].as_str()).collect()
}

/// Waits for `child` up to `within`, killing it past that.
fn wait_within(child: &mut Child, within: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of `reader`, sent as they come.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line equal to `want`.
fn expect_line(rx: &mpsc::Receiver<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line == want => return,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no line {want:?}; saw {seen:?}");
}

// ---- the docker CLI under the default policy ----

#[test]
fn run_i_is_judged_and_recorded_with_its_streams_and_exit_code() {
    let gate = Gate::start();
    let name = unique("runi");
    let _cleanup = Container { name: name.clone() };
    let out = gate.run_stdin(&["run", "-i", "--rm", "--name", &name, IMAGE, "cat"], b"hello\n");
    assert_eq!(ok_stdout(&out), "hello\n");

    let (start, end) = session_of(&gate.audit, &name);
    let id = start["attach_id"].as_str().expect("attach_id");
    assert!(is_attach_id(id), "{start}");
    assert_eq!(start["reasons"], json!([]), "{start}");
    assert_eq!(start["process"]["command"], json!(["cat"]), "{start}");
    assert!(start["process"]["user"].is_string(), "{start}");
    assert_eq!(start["container"]["image"], IMAGE, "{start}");
    assert!(start["container"]["id"].as_str().is_some_and(|i| i.len() == 64), "{start}");
    assert_eq!(start["tty"], false, "{start}");
    assert_eq!(
        start["attach"],
        json!({"stdin": true, "stdout": true, "stderr": true, "logs": false, "stream": true, "detach_keys": null}),
        "{start}"
    );
    assert_eq!(start["request"]["method"], "POST", "{start}");
    assert!(start["request"]["path"].as_str().is_some_and(|p| p.contains("/attach")), "{start}");
    assert!(start["caller"]["exe"].as_str().is_some_and(|e| e.ends_with("docker")), "{start}");
    assert!(start["recording"]["path"].as_str().is_some_and(|p| p.ends_with(".jsonl")), "{start}");

    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["container"], start["container"], "{end}");
    assert_eq!(end["output_captured"], true, "{end}");
    assert!(end["duration_ms"].is_u64(), "{end}");
    assert_eq!(end["bytes"]["stdin"], 6, "{end}");
    assert_eq!(end["bytes"]["stdout"], 6, "{end}");
    assert_eq!(end["bytes"]["stderr"], 0, "{end}");
    assert_eq!(end["bytes"]["not_stored"], 0, "{end}");
    assert_eq!(end["recording"]["path"], start["recording"]["path"], "{end}");

    let recording = recording_of(&gate.audit, &end);
    let events = jsonl_events(&recording, id);
    assert!(
        events.iter().any(|e| e["s"] == "stdin" && e["d"] == "hello\n" && e["t"].is_number()),
        "{recording}"
    );
    assert!(events.iter().any(|e| e["s"] == "stdout" && e["d"] == "hello\n"), "{recording}");
    assert_eq!(stream_bytes(&recording, "stdin"), b"hello\n");
    assert_eq!(stream_bytes(&recording, "stdout"), b"hello\n");
    verify_ok(&gate.audit);
}

#[test]
fn start_ai_carries_stdin_output_and_the_exit_code() {
    let gate = Gate::start();
    let c = create(&unique("startai"), &["-i", IMAGE, "sh", "-c", "read x; echo got $x; exit 3"]);
    let out = gate.run_stdin(&["start", "-ai", &c.name], b"abc\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got abc\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));

    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["decision"], "allow");
    assert_eq!(start["container"]["id"], full_id(&c.name), "{start}");
    assert_eq!(start["process"]["command"], json!(["sh", "-c", "read x; echo got $x; exit 3"]), "{start}");
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["exit_code"], 3, "{end}");
    let recording = recording_of(&gate.audit, &end);
    assert_eq!(stream_bytes(&recording, "stdin"), b"abc\n");
    assert_eq!(stream_bytes(&recording, "stdout"), b"got abc\n");
    verify_ok(&gate.audit);
}

#[test]
fn attach_to_a_running_container_ends_when_the_client_goes() {
    let gate = Gate::start();
    let name = unique("attach");
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "-i", "--name", &name, IMAGE, "sh", "-c"])
            .arg("while read l; do echo \"got:$l\"; done")
            .output()
            .expect("docker run"),
    );
    let c = Container { name };

    // 1. The client closes its stdin: the daemon ends the attach (the
    //    container has no StdinOnce), and the container keeps running: the
    //    session was left, as with detach keys.
    let mut cli = gate
        .docker()
        .args(["attach", &c.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker attach");
    let mut stdin = cli.stdin.take().expect("stdin");
    let lines = lines_of(cli.stdout.take().expect("stdout"));
    stdin.write_all(b"one\n").expect("write stdin");
    expect_line(&lines, "got:one");
    drop(stdin);
    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["attach"]["stdin"], true, "{start}");
    assert_eq!(state(&c.name), "running", "the container outlives an attach");
    assert_eq!(end["reason"], "detached", "{end}");
    assert_eq!(end["exit_code"], Value::Null, "{end}");
    let recording = recording_of(&gate.audit, &end);
    assert_eq!(stream_bytes(&recording, "stdin"), b"one\n");
    assert_eq!(stream_bytes(&recording, "stdout"), b"got:one\n");
    let first = start["attach_id"].as_str().expect("attach_id").to_owned();

    // 2. The client dies mid-session.
    let mut killed = gate
        .docker()
        .args(["attach", &c.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker attach");
    let mut stdin2 = killed.stdin.take().expect("stdin");
    let lines2 = lines_of(killed.stdout.take().expect("stdout"));
    stdin2.write_all(b"two\n").expect("write stdin");
    expect_line(&lines2, "got:two");
    killed.kill().expect("kill the client");
    let _ = killed.wait();
    let end2 = wait_record(&gate.audit, "the second attach.end", Duration::from_secs(20), |r| {
        r["event"] == "attach.end" && names(r, &c.name) && r["attach_id"] != first.as_str()
    });
    assert_eq!(end2["reason"], "client_hangup", "{end2}");
    assert_eq!(end2["exit_code"], Value::Null, "{end2}");
    assert_eq!(state(&c.name), "running");

    // The first CLI waits for the container to stop before it exits.
    ok_stdout(&direct_docker().args(["kill", &c.name]).output().expect("docker kill"));
    wait_within(&mut cli, Duration::from_secs(20), "docker attach");
    verify_ok(&gate.audit);
}

// ---- a TTY session over raw HTTP ----

#[test]
fn tty_attach_is_an_asciicast_with_container_resizes() {
    let gate = Gate::start();
    let c = create(&unique("tty"), &["-i", "-t", IMAGE, "sh"]);
    let id = full_id(&c.name);
    let mut session = gate.connect();
    session
        .write_all(&attach_request(
            &format!("/v1.41/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"),
            UPGRADE,
            "",
        ))
        .expect("write attach");
    let head = String::from_utf8_lossy(&read_until(&mut session, b"\r\n\r\n")).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The attach waits for the start, as for `run -it`.
    ok_stdout(&direct_docker().args(["start", &c.name]).output().expect("docker start"));

    // Resized through the gate, by name and by id, while the session is live.
    for (reference, w, h) in [(c.name.as_str(), 80, 24), (id.as_str(), 120, 40)] {
        let (code, head, body) = exchange(
            &gate,
            &attach_request(&format!("/v1.41/containers/{reference}/resize?h={h}&w={w}"), "", ""),
        );
        assert_eq!(code, 200, "{head}{}", String::from_utf8_lossy(&body));
    }
    session.write_all(b"echo hi-$((6*7))\n").expect("write");
    let seen = read_until(&mut session, b"hi-42");
    assert!(String::from_utf8_lossy(&seen).contains("hi-42"), "{}", String::from_utf8_lossy(&seen));
    session.write_all(b"exit\n").expect("write");
    read_until(&mut session, b""); // to EOF

    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["tty"], true, "{start}");
    assert_eq!(start["process"]["command"], json!(["sh"]), "{start}");
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["bytes"]["stdin"], "echo hi-$((6*7))\nexit\n".len(), "{end}");
    let path = end["recording"]["path"].as_str().expect("recording path");
    assert!(path.ends_with(".cast"), "{path}");
    let cast = recording_of(&gate.audit, &end);
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header JSON");
    assert_eq!(header["version"], 2, "{header}");
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(l).expect("event")).collect();
    for event in &events {
        let e = event.as_array().unwrap_or_else(|| panic!("not an asciicast event: {event}"));
        assert!(e.len() == 3 && e[0].is_number() && e[1].is_string() && e[2].is_string(), "{event}");
    }
    let joined = |code: &str| -> String {
        events.iter().filter(|e| e[1] == code).filter_map(|e| e[2].as_str()).collect()
    };
    assert!(joined("o").contains("hi-42"), "{cast}");
    assert_eq!(joined("i"), "echo hi-$((6*7))\nexit\n", "{cast}");
    let resizes: Vec<&str> = events.iter().filter(|e| e[1] == "r").filter_map(|e| e[2].as_str()).collect();
    assert_eq!(resizes, ["80x24", "120x40"], "{cast}");
    // asciinema itself reads it back.
    let played = Command::new("asciinema")
        .arg("cat")
        .arg(gate.audit.join(path))
        .output()
        .expect("asciinema (scripts/testbed.sh installs it)");
    assert!(played.status.success(), "{}", String::from_utf8_lossy(&played.stderr));
    verify_ok(&gate.audit);
}

#[test]
fn detach_keys_end_a_tty_session_and_leave_the_container_running() {
    let gate = Gate::start();
    let name = unique("detach");
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "-i", "-t", "--name", &name, IMAGE, "sh"])
            .output()
            .expect("docker run"),
    );
    let c = Container { name };
    let mut ended = Vec::new();
    for (keys, typed) in [(None, &b"\x10\x11"[..]), (Some("ctrl-a,x"), &b"\x01x"[..])] {
        let query = keys.map_or(String::new(), |k| format!("&detachKeys={k}"));
        let mut session = gate.connect();
        session
            .write_all(&attach_request(
                &format!("/containers/{}/attach?stream=1&stdin=1&stdout=1&stderr=1{query}", c.name),
                UPGRADE,
                "",
            ))
            .expect("write attach");
        let head = String::from_utf8_lossy(&read_until(&mut session, b"\r\n\r\n")).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        session.write_all(b"echo pre-$((40+2))\n").expect("write");
        read_until(&mut session, b"pre-42");
        session.write_all(typed).expect("write detach keys");
        read_until(&mut session, b""); // the daemon ends the stream
        let end = wait_record(&gate.audit, "attach.end after detach keys", Duration::from_secs(20), |r| {
            r["event"] == "attach.end"
                && names(r, &c.name)
                && !ended.contains(&r["attach_id"].as_str().unwrap_or_default().to_owned())
        });
        assert_eq!(end["reason"], "detached", "{keys:?}: {end}");
        assert_eq!(end["exit_code"], Value::Null, "{keys:?}: {end}");
        assert_eq!(end["attach"]["detach_keys"], keys.map_or(Value::Null, Value::from), "{end}");
        assert_eq!(end["tty"], true, "{end}");
        assert_eq!(state(&c.name), "running", "{keys:?}: detaching leaves the container running");
        assert!(recording_of(&gate.audit, &end).contains("pre-42"), "{keys:?}");
        ended.push(end["attach_id"].as_str().expect("attach_id").to_owned());
    }
    verify_ok(&gate.audit);
}

#[test]
fn cli_attach_under_a_terminal_records_its_resizes_and_its_detach() {
    let gate = Gate::start();
    let name = unique("cliattach");
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "-i", "-t", "--name", &name, IMAGE, "sh"])
            .output()
            .expect("docker run"),
    );
    let c = Container { name };
    let mut cli = Command::new("script")
        .args(["-qec", &format!("stty cols 100 rows 30; docker attach {}", c.name), "/dev/null"])
        .env("DOCKER_HOST", gate.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    let mut keys = cli.stdin.take().expect("stdin");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut out = cli.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |needle: &[u8]| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!(
                    "no {:?} from the CLI: {}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    };
    let start = wait_record(&gate.audit, "attach.start", Duration::from_secs(15), |r| {
        r["event"] == "attach.start" && names(r, &c.name)
    });
    assert_eq!(start["decision"], "allow", "{start}");
    // The CLI names the container as typed; execgate pins the attach to its id.
    assert!(start["request"]["path"].as_str().is_some_and(|p| p.contains(&c.name)), "{start}");
    assert_eq!(start["container"]["id"], full_id(&c.name), "{start}");
    keys.write_all(b"echo cli-$((40+2))\r").expect("type");
    wait_for(b"cli-42");
    // ctrl-p ctrl-q: the CLI swallows them and leaves; the daemon never sees them.
    keys.write_all(b"\x10\x11").expect("type detach keys");
    wait_within(&mut cli, Duration::from_secs(15), "docker attach after detach keys");
    drop(keys);

    let (_, end) = session_of(&gate.audit, &c.name);
    assert_eq!(state(&c.name), "running", "detaching leaves the container running");
    // What execgate sees of a CLI detach is its client leaving.
    assert_eq!(end["reason"], "client_hangup", "{end}");
    assert_eq!(end["exit_code"], Value::Null, "{end}");
    let cast = recording_of(&gate.audit, &end);
    let events: Vec<Value> = cast.lines().skip(1).map(|l| serde_json::from_str(l).expect("event")).collect();
    let output: String = events.iter().filter(|e| e[1] == "o").filter_map(|e| e[2].as_str()).collect();
    assert!(output.contains("cli-42"), "{cast}");
    assert_eq!(joined_input(&events), "echo cli-$((40+2))\r", "the CLI keeps its detach keys: {cast}");
    // The CLI sizes the container's terminal through POST /containers/{name}/resize
    // (one row and column more first, then the size).
    let resizes: Vec<&str> = events.iter().filter(|e| e[1] == "r").filter_map(|e| e[2].as_str()).collect();
    assert_eq!(resizes, ["101x31", "100x30"], "{cast}");
    verify_ok(&gate.audit);
}

#[test]
fn container_resizes_are_recorded_as_the_daemon_applies_them() {
    let gate = Gate::start();
    let name = unique("resizes");
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "-i", "-t", "--name", &name, IMAGE, "sh"])
            .output()
            .expect("docker run"),
    );
    let c = Container { name };
    let id = full_id(&c.name);
    // A running container whose name is a prefix of the attached one's id.
    let other = Container { name: id[..12].to_owned() };
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "-t", "--name", &other.name, IMAGE, "sleep", "60"])
            .output()
            .expect("docker run"),
    );
    let mut session = gate.connect();
    session
        .write_all(&attach_request(
            &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1"),
            UPGRADE,
            "",
        ))
        .expect("write attach");
    let head = String::from_utf8_lossy(&read_until(&mut session, b"\r\n\r\n")).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    wait_record(&gate.audit, "attach.start", Duration::from_secs(10), |r| r["event"] == "attach.start");

    // (reference, query, status on both daemons, what the daemon applies)
    let cases: [(&str, &str, u16, Option<&str>); 6] = [
        (&c.name, "h=24&w=80&h=50&w=200", 200, Some("80x24")), // the first value wins
        (&c.name, "%68=30&%77=100", 200, Some("100x30")),      // keys are percent-decoded
        (&c.name, "h=+5&w=+6", 400, None),                     // `+` is a space: refused
        (&id, "h=010&w=0090", 200, Some("90x10")),             // leading zeros are fine
        (&id[..10], "h=12&w=34", 200, Some("34x12")),          // an id prefix
        (&other.name, "h=11&w=33", 200, None),                 // a name, not this id's prefix
    ];
    for (reference, query, expect, _) in cases {
        let (code, head, body) =
            exchange(&gate, &attach_request(&format!("/containers/{reference}/resize?{query}"), "", ""));
        assert_eq!(code, expect, "{query}: {head}{}", String::from_utf8_lossy(&body));
    }
    // The daemon's own view of the terminal: the last applied size.
    session.write_all(b"stty size; exit\n").expect("write");
    let out = String::from_utf8_lossy(&read_until(&mut session, b"")).into_owned();
    assert!(out.contains("12 34"), "{out}");
    let (_, end) = session_of(&gate.audit, &c.name);
    let cast = recording_of(&gate.audit, &end);
    let resizes: Vec<String> = cast
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).expect("event"))
        .filter(|e| e[1] == "r")
        .filter_map(|e| e[2].as_str().map(str::to_owned))
        .collect();
    let applied: Vec<&str> = cases.iter().filter_map(|c| c.3).collect();
    assert_eq!(resizes, applied, "{cast}");
}

// ---- denial ----

#[test]
fn a_denied_attach_runs_nothing_and_says_why() {
    let dir = TempDir::new("denyattach");
    let gate = gate_with_policy(&dir, DENY_ATTACH);
    let name = unique("denied");
    let c = Container { name: name.clone() };
    let since = now_stamp();
    let out = gate.run(&["run", "-i", "--name", &name, IMAGE, "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The CLI drops the body of any non-101 answer to a hijack, so it cannot
    // show the reason (moby client/hijack.go); the raw answer below carries it.
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("unable to upgrade to tcp, received 403"), "{err}");
    // docker run leaves the container it created; it never started.
    assert_eq!(state(&c.name), "created");
    assert_eq!(daemon_attaches(&c.name, &since), 0, "a denied attach must not reach the daemon");

    let denials = starts_for(&gate.audit, &name);
    assert_eq!(denials.len(), 1, "{denials:?}");
    let denial = &denials[0];
    assert_eq!(denial["decision"], "deny", "{denial}");
    assert_eq!(denial["reasons"], json!(["no attach"]), "{denial}");
    assert!(is_attach_id(denial["attach_id"].as_str().unwrap_or_default()), "{denial}");
    assert_eq!(denial["process"]["command"], json!(["true"]), "{denial}");
    assert!(denial["recording"].is_null(), "{denial}");
    assert!(!records(&gate.audit).iter().any(|r| r["event"] == "attach.end"), "a denial opens no session");

    // What a client that reads the answer sees.
    let (code, head, body) = exchange(
        &gate,
        &attach_request(&format!("/containers/{name}/attach?stream=1&stdout=1"), UPGRADE, ""),
    );
    assert_eq!(code, 403, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    assert_eq!(message(&head, &body), "execgate: attach denied: no attach");
    assert_eq!(state(&c.name), "created");
    assert_eq!(daemon_attaches(&c.name, &since), 0, "a denied attach must not reach the daemon");
    // However the path spells it, it is an attach.
    let id = full_id(&name);
    for path in [
        format!("/containers/{id}/attac%68?stream=1&stdin=1&stdout=1"),
        format!("/v1.41/containers/{id}/%61ttach?stream=1&stdin=1&stdout=1"),
        format!("/containers/{}/attach?stream=1&stdin=1&stdout=1", &id[..12]),
    ] {
        let (code, head, body) = exchange(&gate, &attach_request(&path, UPGRADE, ""));
        assert_eq!(code, 403, "{path}: {head}");
        assert_eq!(message(&head, &body), "execgate: attach denied: no attach", "{path}");
    }
    assert_eq!(daemon_attaches(&c.name, &since), 0, "a denied attach must not reach the daemon");
    assert_eq!(starts_for(&gate.audit, &name).len(), 5);

    // The policy is about attach alone: a detached run does not attach.
    let detached = unique("detached");
    let _d = Container { name: detached.clone() };
    ok_stdout(&gate.run(&["run", "-d", "--name", &detached, IMAGE, "true"]));
    verify_ok(&gate.audit);
}

#[test]
fn the_attach_guard_example_denies_interactive_attaches_to_root_or_shell_pid_1() {
    common::require_daemon();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let gate = Gate::start_with(
        Path::new(docker_sock()),
        &[
            "--policy",
            root.join("execgate.rego").to_str().expect("utf8"),
            "--policy",
            root.join("examples/attach_guard.rego").to_str().expect("utf8"),
        ],
    );
    let run = |tag: &str, args: &[&str], stdin: &[u8]| {
        let name = unique(tag);
        let mut all = vec!["run", "--name", &name];
        all.extend(args);
        let out = gate.run_stdin(&all, stdin);
        (Container { name: name.clone() }, out)
    };
    // Interactive, PID 1 neither root nor a shell: allowed.
    let (_a, out) = run("guardok", &["-i", "--user", "app", IMAGE, "cat"], b"typed\n");
    assert_eq!(ok_stdout(&out), "typed\n");
    // Not interactive (no -i): allowed, even for a root shell.
    let (_b, out) = run("guardout", &[IMAGE, "sh", "-c", "echo out-only"], b"");
    assert_eq!(ok_stdout(&out), "out-only\n");
    // Interactive into a root PID 1, and into a shell: denied before anything runs.
    for (tag, args, reason) in [
        ("guardroot", &["-i", IMAGE, "cat"][..], "its PID 1 runs as root"),
        ("guardsh", &["-i", "--user", "app", IMAGE, "sh", "-c", "cat"][..], "its PID 1 is the shell \"sh\""),
    ] {
        let (c, out) = run(tag, args, b"typed\n");
        assert!(!out.status.success(), "{tag}: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(state(&c.name), "created", "{tag}");
        let denial =
            starts_for(&gate.audit, &c.name).pop().unwrap_or_else(|| panic!("{tag}: no attach.start"));
        assert_eq!(denial["decision"], "deny", "{tag}: {denial}");
        let reasons = denial["reasons"].as_array().expect("reasons");
        assert!(reasons.iter().any(|r| r.as_str().is_some_and(|r| r.contains(reason))), "{tag}: {denial}");
    }
    verify_ok(&gate.audit);
}

#[test]
fn the_policy_sees_the_attach_as_the_daemon_parses_it() {
    let dir = TempDir::new("echoinput");
    let gate = gate_with_policy(&dir, ECHO_INPUT);
    let c = create(&unique("input"), &["-i", "--user", "app", "--label", "team=blue", IMAGE, "sleep", "5"]);
    let closed = create(&unique("nostdin"), &[IMAGE, "sh"]);
    let id = full_id(&c.name);
    let judged = |container: &str, query: &str| -> Value {
        let (code, head, body) =
            exchange(&gate, &attach_request(&format!("/containers/{container}/attach?{query}"), UPGRADE, ""));
        assert_eq!(code, 403, "{query}: {head}{}", String::from_utf8_lossy(&body));
        let text = message(&head, &body);
        let facts =
            text.strip_prefix("execgate: attach denied: ").unwrap_or_else(|| panic!("{query}: {text}"));
        serde_json::from_str(facts)
            .unwrap_or_else(|e| panic!("{query}: not the policy's JSON ({e}): {facts}"))
    };
    let flags = |input: &Value| -> [bool; 6] {
        ["stdin", "stdout", "stderr", "logs", "stream", "interactive"]
            .map(|k| input["attach"][k].as_bool().unwrap_or_else(|| panic!("attach.{k} in {input}")))
    };

    // The CLI's query.
    let input = judged(&c.name, "stderr=1&stdin=1&stdout=1&stream=1");
    assert_eq!(input["action"], "attach", "{input}");
    assert_eq!(flags(&input), [true, true, true, false, true, true], "{input}");
    assert_eq!(input["attach"]["detach_keys"], Value::Null, "{input}");
    let ctr = &input["container"];
    assert_eq!(ctr["id"], id.as_str(), "{input}");
    assert_eq!(ctr["name"].as_str().map(|n| n.trim_start_matches('/')), Some(c.name.as_str()), "{input}");
    assert_eq!(ctr["image"], IMAGE, "{input}");
    assert_eq!(ctr["labels"], json!({"team": "blue"}), "{input}");
    assert_eq!(ctr["user"], "app", "{input}");
    assert_eq!(ctr["privileged"], false, "{input}");
    assert_eq!(ctr["running"], false, "{input}");
    assert_eq!(ctr["tty"], false, "{input}");
    assert_eq!(ctr["open_stdin"], true, "{input}");
    assert_eq!(ctr["status"], "created", "{input}");
    assert_eq!(input["process"]["command"], json!(["sleep", "5"]), "{input}");
    assert_eq!(input["process"]["user"], "app", "{input}");
    assert_eq!(input["process"]["uid"], 1000, "{input}");
    assert_eq!(input["process"]["is_root"], false, "{input}");
    assert_eq!(input["request"]["method"], "POST", "{input}");
    assert!(input["caller"].is_object(), "{input}");

    // Go's BoolValue: false only for "", 0, no, false, none (any case, trimmed).
    let input = judged(&id, "stream=1&stdin=%20no%20&stdout=FaLsE&stderr=+0&logs=none");
    assert_eq!(flags(&input), [false, false, false, false, true, false], "{input}");
    let input = judged(&id, "stream=yes&stdin=on&stdout=2&stderr=x&logs=TRUE&detachKeys=ctrl-a,x");
    assert_eq!(flags(&input), [true, true, true, true, true, true], "{input}");
    assert_eq!(input["attach"]["detach_keys"], "ctrl-a,x", "{input}");
    let input = judged(&id, "stream=1&stdin=&stdout=0");
    assert_eq!(flags(&input), [false, false, false, false, true, false], "{input}");
    // The first of repeated keys wins; keys are percent-decoded and case-sensitive.
    let input = judged(&id, "stream=1&stdin=0&stdin=1&std%6fut=1&Stderr=1");
    assert_eq!(flags(&input), [false, true, false, false, true, false], "{input}");
    let input = judged(&id, "stream=0&stream=1&stdin=1");
    assert_eq!(flags(&input)[4..], [false, false], "{input}");
    // Interactive needs the container's OpenStdin.
    let input = judged(&closed.name, "stream=1&stdin=1&stdout=1");
    assert_eq!(input["container"]["open_stdin"], false, "{input}");
    assert_eq!(flags(&input), [true, true, false, false, true, false], "{input}");
    assert_eq!(input["process"]["uid"], 0, "{input}");
    assert_eq!(input["process"]["is_root"], true, "{input}");
}

// ---- what execgate refuses on its own ----

#[test]
fn websocket_attach_form_bodies_and_semicolons_are_refused_before_the_daemon() {
    let gate = Gate::start();
    let c = create(&unique("refuse"), &["-i", IMAGE, "sh", "-c", "echo refused-run"]);
    let id = full_id(&c.name);
    let since = now_stamp();

    // attach/ws: 403, with or without a WebSocket handshake.
    let ws_headers = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    for (path, headers) in [
        (format!("/containers/{id}/attach/ws?stream=1&stdin=1&stdout=1"), ws_headers),
        (format!("/v1.41/containers/{}/attach/ws?stream=1", c.name), ws_headers),
        (format!("/containers/{id}/attach/ws?logs=1"), ""),
        (format!("/containers/{id}/attach%2Fws?stream=1&stdin=1"), ws_headers),
        (format!("/containers/{id}/attach/w%73?stream=1&stdin=1"), ws_headers),
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: docker\r\n{headers}\r\n");
        let (code, head, body) = exchange(&gate, raw.as_bytes());
        assert_eq!(code, 403, "{path}: {head}{}", String::from_utf8_lossy(&body));
        let text = message(&head, &body);
        assert!(text.starts_with("execgate: attach denied: "), "{path}: {text}");
        assert!(text.to_ascii_lowercase().contains("websocket"), "{path}: {text}");
    }

    // Parameters the daemon would read from a form body: 400. (Other bodies
    // are read and not forwarded: see the dockerode client test.)
    let query = format!("/containers/{id}/attach?stream=1&stdin=1&stdout=0");
    for (headers, body) in [
        ("Content-Type: application/x-www-form-urlencoded\r\n", "stdout=1"),
        ("Content-Type: application/x-www-form-urlencoded\r\n", ""),
        ("Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8\r\n", ""),
    ] {
        let (code, head, answer) =
            exchange(&gate, &attach_request(&query, &format!("{headers}{UPGRADE}"), body));
        assert_eq!(code, 400, "{headers:?} {body:?}: {head}{}", String::from_utf8_lossy(&answer));
        assert!(message(&head, &answer).starts_with("execgate: "), "{headers:?} {body:?}");
    }
    // A `;` anywhere in the query, or a bad escape: Go refuses the whole
    // query; so does execgate (the daemon's own 400 would not say "execgate").
    for q in
        ["stream=1;stdin=1&stdout=1", "stream=1&stdout=1&x=a;b", "stream=1&stdout=1&;", "stream=1&stdin=%zz"]
    {
        let (code, head, answer) =
            exchange(&gate, &attach_request(&format!("/containers/{id}/attach?{q}"), UPGRADE, ""));
        assert_eq!(code, 400, "{q}: {head}{}", String::from_utf8_lossy(&answer));
        assert!(message(&head, &answer).starts_with("execgate: "), "{q}: {head}");
    }

    assert_eq!(daemon_attaches(&id, &since), 0, "a refused attach must not reach the daemon");
    let all = records(&gate.audit);
    assert!(
        !all.iter()
            .any(|r| r["event"] == "attach.start" && r["decision"] == "allow" || r["event"] == "attach.end"),
        "no session may open: {all:?}"
    );

    // The control: an allowed attach (logs only, no stream) is seen by the
    // daemon, so the count above could have been non-zero.
    let mut stream = gate.connect();
    stream
        .write_all(&attach_request(&format!("/containers/{id}/attach?logs=1&stdout=1"), UPGRADE, ""))
        .expect("write");
    let answer = String::from_utf8_lossy(&read_until(&mut stream, b"")).into_owned(); // to EOF
    assert_eq!(status(&answer), 101, "{answer}");
    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["attach"]["stream"], false, "{start}");
    assert_eq!(start["attach"]["logs"], true, "{start}");
    assert!(end["reason"].is_string(), "{end}");
    assert_eq!(daemon_attaches(&id, &since), 1);
    assert_eq!(state(&c.name), "created");
}

#[test]
fn daemon_refusals_are_passed_on_and_close_the_session() {
    let gate = Gate::start();
    let c = create(&unique("badkeys"), &["-i", IMAGE, "sh"]);
    // Bad detach keys: the daemon refuses inside the hijack (400, plain text).
    let mut stream = gate.connect();
    stream
        .write_all(&attach_request(
            &format!("/containers/{}/attach?stream=1&stdout=1&detachKeys=ctrl-~~", c.name),
            UPGRADE,
            "",
        ))
        .expect("write attach");
    let answer = String::from_utf8_lossy(&read_until(&mut stream, b"provided")).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Invalid detach keys (ctrl-~~) provided"), "{answer}");
    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["attach"]["detach_keys"], "ctrl-~~", "{start}");
    assert_eq!(end["reason"], "daemon_error", "{end}");
    assert_eq!(end["exit_code"], Value::Null, "{end}");
    assert_eq!(state(&c.name), "created");

    // No such container: execgate cannot judge it, and says so.
    let missing = unique("missing");
    let (code, head, body) = exchange(
        &gate,
        &attach_request(&format!("/containers/{missing}/attach?stream=1&stdout=1"), UPGRADE, ""),
    );
    assert_eq!(code, 404, "{head}");
    let text = message(&head, &body);
    assert!(
        text.starts_with("execgate: cannot look up container") && text.contains("No such container"),
        "{text}"
    );
    let denial = wait_record(&gate.audit, "the refused attach", Duration::from_secs(10), |r| {
        r["event"] == "attach.start" && r["decision"] == "deny"
    });
    assert!(denial["reasons"].to_string().contains(&missing), "{denial}");
    verify_ok(&gate.audit);
}

#[test]
fn a_logs_only_attach_claims_no_exit_it_did_not_see() {
    let gate = Gate::start();
    let name = unique("logsonly");
    let run = direct_docker()
        .args(["run", "--name", &name, IMAGE, "sh", "-c", "echo logged-out; exit 6"])
        .output()
        .expect("docker run");
    assert_eq!(run.status.code(), Some(6));
    let c = Container { name };
    // No stream: the daemon replays the log and ends the attach at once.
    let mut stream = gate.connect();
    stream
        .write_all(&attach_request(&format!("/containers/{}/attach?logs=1&stdout=1", c.name), UPGRADE, ""))
        .expect("write");
    let data = read_until(&mut stream, b"");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(data.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&data));
    assert_eq!(frames(&data[split..]), vec![(1, b"logged-out\n".to_vec())]);
    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["attach"]["stream"], false, "{start}");
    assert_eq!(stream_bytes(&recording_of(&gate.audit, &end), "stdout"), b"logged-out\n");
    // The container exited with 6 before this session began: that is not this session's end.
    assert_eq!(end["exit_code"], Value::Null, "{end}");
    assert_ne!(end["reason"], "exited", "{end}");
}

// ---- attach without Upgrade (dockerode without `hijack`) ----

#[test]
fn attach_without_upgrade_streams_a_plain_200_and_is_recorded() {
    let gate = Gate::start();
    let c = create(&unique("noupgrade"), &[IMAGE, "sh", "-c", "echo plain-out; echo plain-err >&2; exit 4"]);
    let id = full_id(&c.name);
    let mut stream = gate.connect();
    stream
        .write_all(&attach_request(
            &format!("/containers/{id}/attach?stream=true&stdout=true&stderr=true"),
            "",
            "",
        ))
        .expect("write attach");
    let mut data = read_until(&mut stream, b"\r\n\r\n");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("response head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") || head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(
        head.lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "")
                == "content-type:application/vnd.docker.raw-stream"),
        "{head}"
    );
    ok_stdout(&direct_docker().args(["start", &c.name]).output().expect("docker start"));
    data.extend(read_until(&mut stream, b"")); // to EOF
    let mut got = frames(&data[split..]);
    got.sort_by_key(|(s, _)| *s);
    assert_eq!(got, vec![(1, b"plain-out\n".to_vec()), (2, b"plain-err\n".to_vec())]);

    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["attach"]["stdin"], false, "{start}");
    assert_eq!(start["attach"]["stream"], true, "{start}");
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["exit_code"], 4, "{end}");
    assert_eq!(end["bytes"]["stdout"], 10, "{end}");
    assert_eq!(end["bytes"]["stderr"], 10, "{end}");
    let recording = recording_of(&gate.audit, &end);
    assert_eq!(stream_bytes(&recording, "stdout"), b"plain-out\n");
    assert_eq!(stream_bytes(&recording, "stderr"), b"plain-err\n");
    verify_ok(&gate.audit);
}

#[test]
fn a_body_sent_with_an_attach_is_not_forwarded_and_never_reaches_stdin() {
    // dockerode repeats the attach options as a JSON body. The daemon ignores
    // it as a body, but after the hijack takes its bytes for the start of
    // stdin; execgate reads it, records its size and does not forward it.
    let gate = Gate::start();
    let c = create(&unique("attachbody"), &["-i", IMAGE, "sh", "-c", "read line; echo got:$line"]);
    let id = full_id(&c.name);
    let body = r#"{"stream":true,"stdin":true,"stdout":true}"#;
    let mut stream = gate.connect();
    stream
        .write_all(&attach_request(
            &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1"),
            &format!("Content-Type: application/json\r\n{UPGRADE}"),
            body,
        ))
        .expect("write attach");
    let head = read_until(&mut stream, b"\r\n\r\n");
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    ok_stdout(&direct_docker().args(["start", &c.name]).output().expect("docker start"));
    stream.write_all(b"typed\n").expect("write stdin");
    let out = read_until(&mut stream, b"");
    let text: Vec<u8> = frames(&out[head.len().min(out.len())..]).into_iter().flat_map(|(_, d)| d).collect();
    let all = String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&text);
    assert!(all.contains("got:typed"), "the typed line is PID 1's first input: {all:?}");
    assert!(!all.contains("stream"), "the body reached stdin: {all:?}");
    let (start, end) = session_of(&gate.audit, &c.name);
    assert_eq!(start["ignored_body_bytes"], body.len(), "{start}");
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["bytes"]["stdin"], 6, "{end}");
}
