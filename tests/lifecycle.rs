//! execgate as a process: its socket, start-up checks and shutdown.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Container, Gate, TempDir, docker_sock, ok_stdout};

#[test]
fn socket_gets_mode_and_group_and_live_sockets_are_not_stolen() {
    common::require_daemon();
    let gate = Gate::start_with(
        std::path::Path::new(docker_sock()),
        &["--socket-mode", "0640", "--socket-group", "1234"],
    );
    let meta = std::fs::symlink_metadata(&gate.socket).expect("stat socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), 1234);
    // No staging directory is left beside it.
    let parent = gate.socket.parent().expect("parent");
    let leftovers: Vec<_> =
        std::fs::read_dir(parent).expect("readdir").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().ends_with(".tmp")), "{leftovers:?}");

    let second = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .arg("serve")
        .arg("--listen")
        .arg(&gate.socket)
        .output()
        .expect("second execgate");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is in use by a running process"), "{err}");
    // The first one still serves.
    ok_stdout(&gate.run(&["version"]));
}

#[test]
fn a_stale_socket_is_replaced() {
    common::require_daemon();
    let dir = TempDir::new("stale");
    let path = dir.path().join("gate.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .arg("serve")
        .arg("--listen")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .expect("execgate");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        answered = Command::new("docker")
            .args(["-H", &format!("unix://{}", path.display()), "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered, "execgate did not take over the stale socket");
}

#[test]
fn startup_logs_daemon_version_and_warns_about_an_open_daemon_socket() {
    let gate = Gate::start();
    let meta = std::fs::metadata(docker_sock()).expect("daemon socket");
    // The version probe may still be under way when the socket answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gate.log_text().contains("Docker daemon reachable") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = gate.log_text();
    assert!(log.contains("Docker daemon reachable") && log.contains("api_version"), "{log}");
    let exposed = meta.permissions().mode() & 0o077 != 0 || meta.uid() != 0;
    assert_eq!(log.contains("SECURITY: the daemon socket is reachable by more than root"), exposed, "{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    common::require_daemon();
    let gate = Gate::start_with(std::path::Path::new(docker_sock()), &["--log-format", "json"]);
    ok_stdout(&gate.run(&["version"]));
    let log = gate.log_text();
    let lines: Vec<_> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string() && value["message"].is_string(), "{line}");
    }
}

#[test]
fn sigterm_lets_live_sessions_finish_then_exits_zero() {
    let gate = Gate::start();
    let c = Container::run("sigterm", &[]);
    let session = gate
        .docker()
        .args(["exec", &c.name, "sh", "-c", "echo started; sleep 2; echo finished"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exec");
    // Wait until the session is streaming before the signal.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gate.log_text().lines().any(|l| l.contains("exec allowed") && l.contains("action=\"start\"")) {
        assert!(Instant::now() < deadline, "session never started: {}", gate.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let socket = gate.socket.clone();
    Command::new("kill").args(["-TERM", &gate.pid().to_string()]).status().expect("kill");
    // New connections are refused while the session drains.
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err(), "still accepting after SIGTERM");
    let code = gate.wait_exit(Duration::from_secs(15));
    let out = session.wait_with_output().expect("exec output");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\nfinished\n");
    assert!(out.status.success());
    assert_eq!(code, Some(0));
    assert!(!socket.exists(), "socket file left behind");
}

// Regression: two instances sharing one audit directory interleaved records
// with duplicate seq numbers, and `verify` then reported tampering.
#[test]
fn a_second_instance_on_the_same_audit_dir_refuses_before_writing() {
    let first = Gate::start();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&first.audit)
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).expect("read")))
        .collect();
    let dir = common::TempDir::new("second");
    let stderr_path = dir.path().join("second.log");
    let mut second = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .args(["serve", "--listen"])
        .arg(dir.path().join("second.sock"))
        .arg("--upstream")
        .arg(docker_sock())
        .arg("--audit-dir")
        .arg(&first.audit)
        .stderr(std::fs::File::create(&stderr_path).expect("log"))
        .spawn()
        .expect("second execgate");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second execgate kept running on an audit directory in use");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_path).expect("log");
    assert!(!status.success(), "{stderr}");
    let owner = format!("is in use by another execgate (pid {})", first.pid());
    assert!(stderr.contains(&owner), "{stderr}");
    assert!(!dir.path().join("second.sock").exists(), "it must refuse before it serves");
    for (path, bytes) in before {
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "{} changed", path.display());
    }
}

// Regression: with no syslog socket, every anchor to syslog failed silently.
#[test]
fn a_missing_syslog_socket_is_reported_once_at_start() {
    let dir = common::TempDir::new("syslog");
    let missing = dir.path().join("no-such-log");
    let gate =
        Gate::start_with(Path::new(docker_sock()), &["--syslog-socket", missing.to_str().expect("path")]);
    let log = gate.log_text();
    assert_eq!(log.matches("no syslog socket").count(), 1, "{log}");

    // With a socket there, anchors arrive on it and nothing is said.
    let path = dir.path().join("log.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    receiver.set_read_timeout(Some(std::time::Duration::from_secs(20))).expect("timeout");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--syslog-socket", path.to_str().expect("path")]);
    assert!(!gate.log_text().contains("no syslog socket"));
    assert_eq!(gate.stop_and_wait(), Some(0));
    let mut buf = [0u8; 4096];
    let n = receiver.recv(&mut buf).expect("an anchor on the syslog socket");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("audit anchor"));
}
