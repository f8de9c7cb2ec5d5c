//! Fail closed, lose nothing — against the real daemon: a session that cannot
//! be recorded does not run, one whose recording fails is cut, a session's end
//! is never dropped, an exec runs once, and a finished session does not wait
//! for a silent client.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{
    Container, Gate, TempDir, Tmpfs, create_exec_on, direct_docker, docker_sock, fill, ok_stdout,
    read_response, read_until, records, start_request, unique, verify_ok, wait_record,
};

const ATTACHED: &str = r#"{"Detach":false,"Tty":false}"#;

/// A mount made for a test; lazily unmounted on drop, even after a failure.
struct Mounted(PathBuf);

impl Mounted {
    /// `path` bound onto itself read-only: even root cannot create files in it.
    fn read_only(path: &Path) -> Self {
        for args in [&["--bind"][..], &["-o", "remount,bind,ro"]] {
            let status = Command::new("mount").args(args).arg(path).arg(path).status().expect("mount");
            assert!(status.success(), "mount {args:?} {} failed (these tests run as root)", path.display());
        }
        Mounted(path.to_owned())
    }

    /// A tmpfs of `size` at `path`.
    fn tmpfs(path: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs on {} failed (these tests run as root)", path.display());
        Mounted(path.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `{"AttachStdin":…,"Cmd":["sh","-c",script]}` as an exec create body.
fn exec_body(script: &str, stdin: bool) -> String {
    serde_json::json!({
        "AttachStdin": stdin, "AttachStdout": true, "AttachStderr": true, "Cmd": ["sh", "-c", script],
    })
    .to_string()
}

/// Sends an attached start of `exec_id` through the gate on a new connection
/// and returns the connection once the answer's head is read, with the head.
fn start(gate: &Gate, exec_id: &str) -> (UnixStream, String) {
    let mut stream = gate.connect();
    stream.write_all(&start_request("/v1.41", exec_id, ATTACHED, true)).expect("write start");
    let head = read_until(&mut stream, b"\r\n\r\n");
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// Sends an attached start of `exec_id` that execgate answers itself: the
/// status line and the `message` of its JSON error.
fn start_refused(gate: &Gate, exec_id: &str) -> (String, String) {
    let mut stream = gate.connect();
    stream.write_all(&start_request("/v1.41", exec_id, ATTACHED, true)).expect("write start");
    let (head, body) = read_response(&mut stream);
    let status = head.lines().next().unwrap_or_default().to_owned();
    let error: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {head}{}", String::from_utf8_lossy(&body)));
    (status, error["message"].as_str().unwrap_or_default().to_owned())
}

/// Whether `/tmp/{marker}` exists in the container (asked of the daemon directly).
fn ran(container: &str, marker: &str) -> bool {
    direct_docker()
        .args(["exec", container, "test", "-e", &format!("/tmp/{marker}")])
        .status()
        .expect("docker exec test")
        .success()
}

/// The exec.end of `exec_id`, once written.
fn end_of(dir: &Path, exec_id: &str, within: Duration) -> Value {
    wait_record(dir, &format!("exec.end of {exec_id}"), within, |r| {
        r["event"] == "exec.end" && r["exec_id"] == exec_id
    })
}

/// `execgate audit verify DIR`: (exit code, stdout).
fn verify(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .expect("run audit verify");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_start_whose_recording_cannot_be_created_is_refused_and_does_not_run() {
    common::require_daemon();
    let c = Container::run("norec", &[]);
    for how in ["read-only", "full"] {
        let audit = TempDir::new("norec-audit");
        let sessions = audit.path().join("sessions");
        std::fs::create_dir_all(&sessions).expect("sessions dir");
        let _mount = match how {
            "read-only" => Mounted::read_only(&sessions),
            _ => {
                let mount = Mounted::tmpfs(&sessions, "64k");
                fill(&sessions.join("filler"));
                mount
            }
        };
        let gate =
            Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
        let marker = unique("norec");
        let id = create_exec_on(&gate.socket, &c.name, &exec_body(&format!("touch /tmp/{marker}"), false));
        let (status, message) = start_refused(&gate, &id);
        assert!(status.starts_with("HTTP/1.1 503"), "{how}: the start was not refused: {status}");
        assert!(
            message.starts_with("execgate: exec refused: cannot create session recording sessions/"),
            "{message}"
        );
        let cause = if how == "full" { "No space left on device" } else { "Read-only file system" };
        assert!(message.contains(cause), "{how}: {message}");
        assert!(!ran(&c.name, &marker), "{how}: the exec ran without a recording");
        // The refusal is on record; nothing claims a recording.
        let refusal = wait_record(audit.path(), "the refused start", Duration::from_secs(10), |r| {
            r["event"] == "exec.start" && r["exec_id"] == id.as_str()
        });
        assert_eq!(refusal["decision"], "deny", "{refusal}");
        assert!(refusal["reasons"][0].as_str().is_some_and(|r| r.contains(cause)), "{refusal}");
        assert!(
            records(audit.path()).iter().all(|r| r["event"] != "exec.end"),
            "a refused start has no session"
        );
        verify_ok(audit.path());
    }
}

#[test]
fn a_recording_that_fails_mid_session_cuts_the_session() {
    common::require_daemon();
    let audit = TempDir::new("cut-audit");
    let sessions = audit.path().join("sessions");
    std::fs::create_dir_all(&sessions).expect("sessions dir");
    let _mount = Mounted::tmpfs(&sessions, "512k");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("cut", &[]);
    let marker = unique("cut");
    // 32 MB of output: far more than the recording's filesystem holds.
    let script = format!("yes 0123456789abcdef | head -c 32000000; echo; echo done-{marker}");
    let out = gate.run(&["exec", &c.name, "sh", "-c", &script]);
    let shown = out.stdout.len();
    assert!(shown < 16_000_000, "the session streamed on unrecorded: {shown} bytes reached the client");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&format!("done-{marker}")));
    let end = common::exec_end_of(audit.path(), &marker);
    assert_eq!(end["reason"], "recording_failed", "{end}");
    assert!(end["recording_error"].as_str().is_some_and(|e| e.contains("No space left on device")), "{end}");
    assert_eq!(end["recording"], Value::Null, "{end}");
    // The chain is intact, and verify names the session that is not on record.
    let exec_id = end["exec_id"].as_str().expect("exec_id");
    let (code, text) = verify(audit.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.starts_with("ok: "), "{text}");
    assert!(text.contains(&format!("UNRECORDED exec {exec_id}")) && text.contains("No space left"), "{text}");
}

#[test]
fn verify_flags_a_recording_that_vanished_or_an_end_without_one() {
    common::require_daemon();
    let audit = TempDir::new("gone-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("gone", &[]);
    let marker = unique("gone");
    let id = create_exec_on(&gate.socket, &c.name, &exec_body(&format!("echo {marker}; sleep 30"), false));
    let (mut stream, head) = start(&gate, &id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    read_until(&mut stream, marker.as_bytes());
    let start = wait_record(audit.path(), "the start", Duration::from_secs(10), |r| {
        r["event"] == "exec.start" && r["exec_id"] == id.as_str()
    });
    let path = audit.path().join(start["recording"]["path"].as_str().expect("recording path"));
    assert_eq!(verify(audit.path()).0, Some(0), "a live session's recording is there");
    std::fs::remove_file(&path).expect("remove the live recording");
    let (code, text) = verify(audit.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(&format!("UNRECORDED exec {id}")) && text.contains("is missing"), "{text}");
}

#[test]
fn an_exec_runs_once_and_a_second_start_cannot_take_over_the_first_session() {
    common::require_daemon();
    let audit = TempDir::new("twice-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("twice", &[]);
    let marker = unique("twice");
    let script = format!("echo first-{marker}; sleep 2; echo last-{marker}");
    let id = create_exec_on(&gate.socket, &c.name, &exec_body(&script, false));
    let (mut first, head) = start(&gate, &id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    read_until(&mut first, format!("first-{marker}").as_bytes());

    // While it runs: attached and detached second starts are refused.
    for body in [ATTACHED, r#"{"Detach":true}"#] {
        let mut second = gate.connect();
        second.write_all(&start_request("/v1.41", &id, body, true)).expect("write start");
        let (head, answer) = read_response(&mut second);
        assert!(head.starts_with("HTTP/1.1 409"), "{body}: {head}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains(&format!("exec {id} was already started through execgate")), "{answer}");
    }
    let rest = String::from_utf8_lossy(&read_until(&mut first, b"")).into_owned();
    assert!(rest.contains(&format!("last-{marker}")), "the first session lost its stream: {rest}");
    let end = end_of(audit.path(), &id, Duration::from_secs(20));
    assert_eq!((end["reason"].as_str(), end["exit_code"].as_i64()), (Some("exited"), Some(0)), "{end}");
    // Once it ran, another start is refused too.
    let (status, message) = start_refused(&gate, &id);
    assert!(status.starts_with("HTTP/1.1 409"), "{status}: {message}");

    let all = records(audit.path());
    let of_id: Vec<&Value> = all.iter().filter(|r| r["exec_id"] == id.as_str()).collect();
    let ends = of_id.iter().filter(|r| r["event"] == "exec.end").count();
    let allowed = of_id.iter().filter(|r| r["event"] == "exec.start" && r["decision"] == "allow").count();
    let refused = of_id.iter().filter(|r| r["event"] == "exec.start" && r["decision"] == "deny").count();
    assert_eq!((allowed, refused, ends), (1, 3, 1), "{of_id:#?}");
    // The first session's recording holds its own stream, whole.
    let recording = std::fs::read_to_string(
        audit.path().join(end["recording"]["path"].as_str().expect("recording path")),
    )
    .expect("recording");
    let events: String = recording.lines().skip(1).collect(); // after the header, which names the command
    assert_eq!(events.matches(&format!("first-{marker}")).count(), 1, "{recording}");
    assert_eq!(events.matches(&format!("last-{marker}")).count(), 1, "{recording}");
    verify_ok(audit.path());
}

#[test]
fn two_starts_racing_for_one_exec_give_one_session() {
    common::require_daemon();
    let audit = TempDir::new("race-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("race", &[]);
    for round in 0..10 {
        let id = create_exec_on(&gate.socket, &c.name, &exec_body("echo one; sleep 0.3", false));
        let request = start_request("/v1.41", &id, ATTACHED, true);
        let mut streams: Vec<UnixStream> = (0..2).map(|_| gate.connect()).collect();
        for stream in &mut streams {
            stream.write_all(&request).expect("write start");
        }
        let heads: Vec<String> = streams
            .iter_mut()
            .map(|s| String::from_utf8_lossy(&read_until(s, b"\r\n\r\n")).into_owned())
            .collect();
        let won = heads.iter().filter(|h| h.starts_with("HTTP/1.1 101")).count();
        let refused = heads.iter().filter(|h| h.starts_with("HTTP/1.1 409")).count();
        assert_eq!((won, refused), (1, 1), "round {round}: {heads:?}");
        let end = end_of(audit.path(), &id, Duration::from_secs(20));
        assert_eq!(end["reason"], "exited", "round {round}: {end}");
    }
    verify_ok(audit.path());
}

#[test]
fn an_exec_started_on_the_daemon_directly_cannot_be_started_again_through_the_gate() {
    common::require_daemon();
    let gate = Gate::start();
    let c = Container::run("direct", &[]);
    let id = common::create_exec_direct(&c.name, &exec_body("echo running; sleep 5", false));
    let mut direct = UnixStream::connect(docker_sock()).expect("daemon");
    direct.write_all(&start_request("/v1.41", &id, ATTACHED, true)).expect("direct start");
    let head = String::from_utf8_lossy(&read_until(&mut direct, b"running")).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (status, message) = start_refused(&gate, &id);
    assert!(status.starts_with("HTTP/1.1 409"), "{status}: {message}");
    assert!(message.contains("is already running"), "{message}");
}

#[test]
fn a_finished_session_is_ended_and_released_without_waiting_for_a_silent_client() {
    common::require_daemon();
    let audit = TempDir::new("silent-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("silent", &[]);
    let marker = unique("silent");
    // stdin attached and never closed by the client.
    let id = create_exec_on(&gate.socket, &c.name, &exec_body(&format!("echo bye-{marker}; exit 3"), true));
    let (mut stream, head) = start(&gate, &id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The output ends with EOF: execgate shut the client's write half.
    let output = read_until(&mut stream, b"");
    assert!(String::from_utf8_lossy(&output).contains(&format!("bye-{marker}")));
    let end = end_of(audit.path(), &id, Duration::from_secs(10));
    assert_eq!((end["reason"].as_str(), end["exit_code"].as_i64()), (Some("exited"), Some(3)), "{end}");
    // And after the linger execgate has let go of the socket: writes fail.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match stream.write_all(b"still here\n") {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(err) => panic!("unexpected write error: {err}"),
            Ok(()) => {}
        }
        assert!(Instant::now() < deadline, "execgate still holds the socket of a finished session");
        std::thread::sleep(Duration::from_millis(100));
    }
    verify_ok(audit.path());
}

#[test]
fn session_ends_the_full_log_refuses_are_kept_written_later_and_block_new_execs_meanwhile() {
    common::require_daemon();
    let tmpfs = Tmpfs::mount("256k");
    let gate = Gate::start_with(
        Path::new(docker_sock()),
        &["--audit-dir", &tmpfs.mount.to_string_lossy(), "--record", "none"],
    );
    let c = Container::run("owed", &[]);
    let marker = unique("owed");
    let script = format!("echo ready-{marker}; read x; echo got-$x; exit 4");
    // The env makes the end record larger than a page, so it cannot slip into
    // the slack at the end of the log file's last page.
    let body = serde_json::json!({
        "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Cmd": ["sh", "-c", script],
        "Env": [format!("EG_PAD={}", "x".repeat(6000))],
    });
    let id = create_exec_on(&gate.socket, &c.name, &body.to_string());
    let (mut stream, head) = start(&gate, &id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    read_until(&mut stream, format!("ready-{marker}").as_bytes());

    let filler = tmpfs.mount.join("filler");
    fill(&filler);
    stream.write_all(b"go\n").expect("stdin");
    assert!(String::from_utf8_lossy(&read_until(&mut stream, b"")).contains("got-go"));
    // The end cannot be written: execgate says so, naming the exec.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gate.log_text().lines().any(|l| l.contains(&id) && l.contains("not in the audit log yet")) {
        assert!(Instant::now() < deadline, "no warning naming {id}:\n{}", gate.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    // New execs wait for the trail; other calls flow.
    let refused = gate.run(&["exec", &c.name, "sh", "-c", &format!("touch /tmp/{marker}")]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "an exec ran while a session's end was owed");
    assert!(stderr.contains("waiting for the log to take them"), "{stderr}");
    assert!(!ran(&c.name, &marker));
    assert!(ok_stdout(&gate.run(&["ps", "--format", "{{.Names}}"])).lines().any(|n| n == c.name));

    // Room again: the owed end is written, with its exit code, and execs run.
    std::fs::remove_file(&filler).expect("remove filler");
    let end = end_of(&tmpfs.mount, &id, Duration::from_secs(15));
    assert_eq!((end["reason"].as_str(), end["exit_code"].as_i64()), (Some("exited"), Some(4)), "{end}");
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.name, "echo", "after"])), "after\n");
    verify_ok(&tmpfs.mount);
}
