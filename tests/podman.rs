//! execgate in front of Podman 4.3's API service (`podman system service`):
//! the docker CLI and `podman --remote` work through it, and Podman's own
//! libpod exec routes are judged like Docker's. Before, a libpod exec create
//! with `"User":"root"` ran as uid 0 straight through execgate.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    Gate, PODMAN_IMAGE, frames, ok_stdout, podman_sock, read_response, read_until, require_podman, unique,
};
use serde_json::Value;

/// execgate in front of the test bed's Podman service.
fn gate() -> Gate {
    require_podman();
    Gate::start_with(Path::new(podman_sock()), &[])
}

/// A container on Podman, made directly (setup behind execgate's back), whose
/// default user is `app`; removed on drop.
struct PodmanContainer(String);

impl PodmanContainer {
    fn run(tag: &str) -> Self {
        let name = unique(tag);
        let out = direct()
            .args([
                "run",
                "-d",
                "--network",
                "none",
                "--user",
                "app",
                "--name",
                &name,
                PODMAN_IMAGE,
                "sleep",
                "600",
            ])
            .output()
            .expect("docker run on podman");
        ok_stdout(&out);
        PodmanContainer(name)
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = direct().args(["rm", "-f", &self.0]).output();
    }
}

/// The docker CLI straight to Podman.
fn direct() -> Command {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", format!("unix://{}", podman_sock()));
    cmd
}

fn exchange(socket: &Path, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(request).expect("write");
    let (head, body) = read_response(&mut stream);
    (head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status"), body)
}

fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Podman's own record of an exec.
fn podman_exec(id: &str) -> Value {
    let (status, body) = exchange(
        Path::new(podman_sock()),
        format!("GET /v4.0.0/libpod/exec/{id}/json HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("exec inspect")
}

fn output(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_docker_cli_works_through_execgate_in_front_of_podman() {
    let gate = gate();
    let c = PodmanContainer::run("pm-cli");
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.0, "id", "-u"])), "1000\n");
    assert_eq!(
        ok_stdout(&gate.run_stdin(&["exec", "-i", &c.0, "cat"], b"through podman\n")),
        "through podman\n"
    );
    let exit = gate.run(&["exec", &c.0, "sh", "-c", "echo err >&2; exit 7"]);
    assert_eq!(exit.status.code(), Some(7), "{}", output(&exit));
    assert_eq!(String::from_utf8_lossy(&exit.stderr), "err\n");
    let root = gate.run(&["exec", "-u", "root", &c.0, "id", "-u"]);
    assert!(!root.status.success());
    assert!(output(&root).contains("execgate: exec denied: exec as root"), "{}", output(&root));
    let ps = ok_stdout(&gate.run(&["ps", "--format", "{{.Names}}"]));
    assert!(ps.lines().any(|l| l == c.0), "{ps}");
}

#[test]
fn podman_remote_works_through_execgate() {
    let gate = gate();
    let c = PodmanContainer::run("pm-remote");
    let remote = |args: &[&str]| {
        Command::new("podman")
            .args(["--remote", "--url", &format!("unix://{}", gate.socket.display())])
            .args(args)
            .output()
            .expect("podman --remote")
    };
    let allowed = remote(&["exec", &c.0, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&allowed.stdout), "1000\n", "{}", output(&allowed));
    let refused = remote(&["exec", "-u", "root", &c.0, "id", "-u"]);
    assert!(!refused.status.success());
    assert!(output(&refused).contains("execgate: exec denied: exec as root"), "{}", output(&refused));
}

// Regression: `POST /v4.0.0/libpod/containers/{id}/exec` with "User":"root",
// then `/libpod/exec/{id}/start`, ran as uid 0 straight through execgate.
#[test]
fn libpod_exec_routes_are_judged_like_dockers() {
    let gate = gate();
    let c = PodmanContainer::run("pm-libpod");
    for prefix in ["/v4.0.0/libpod", "/v4.3.1/libpod", "/v4.0.0", ""] {
        let (status, body) = exchange(
            &gate.socket,
            &post_json(&format!("{prefix}/containers/{}/exec", c.0), r#"{"Cmd":["id","-u"],"User":"root"}"#),
        );
        assert_eq!(status, 403, "{prefix}: {}", String::from_utf8_lossy(&body));
        assert!(message(&body).contains("resolves to uid 0"), "{prefix}: {}", message(&body));
    }
    let (status, body) = exchange(
        &gate.socket,
        &post_json(
            &format!("/v4.0.0/libpod/containers/{}/exec", c.0),
            r#"{"Cmd":["id","-u"],"User":"app","AttachStdout":true,"Unknown":1}"#,
        ),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).expect("json")["Id"].as_str().expect("Id").to_owned();
    assert_eq!(podman_exec(&id)["ProcessConfig"]["user"], "1000:1000", "pinned to what was judged");
    // Started on the libpod route, without Upgrade: Podman streams it as the daemon would.
    let start = post_json(
        &format!("/v4.0.0/libpod/exec/{id}/start"),
        r#"{"Detach":false,"Tty":false,"h":24,"w":80}"#,
    );
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(&start).expect("start");
    let mut data = read_until(&mut stream, b"\r\n\r\n");
    stream.read_to_end(&mut data).expect("read until close");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).to_ascii_lowercase();
    assert!(head.contains(" 200 "), "{head}");
    let out: Vec<u8> =
        frames(&data[split..]).into_iter().filter(|(s, _)| *s == 1).flat_map(|(_, p)| p).collect();
    assert_eq!(String::from_utf8_lossy(&out), "1000\n");
}

#[test]
fn a_libpod_exec_made_behind_execgates_back_is_judged_at_start() {
    let gate = gate();
    let c = PodmanContainer::run("pm-behind");
    let (status, body) = exchange(
        Path::new(podman_sock()),
        &post_json(&format!("/v4.0.0/libpod/containers/{}/exec", c.0), r#"{"Cmd":["id","-u"],"User":"0:0"}"#),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).expect("json")["Id"].as_str().expect("Id").to_owned();
    let start = post_json(&format!("/v4.0.0/libpod/exec/{id}/start"), r#"{"Detach":true}"#);
    let (status, body) = exchange(&gate.socket, &start);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(message(&body).contains("resolves to uid 0"), "{}", message(&body));
    assert_eq!(podman_exec(&id)["Running"], false);
    assert_eq!(podman_exec(&id)["Pid"], 0, "the refused exec never ran");
}

#[test]
fn an_exec_runs_once_on_podman_too() {
    let gate = gate();
    let c = PodmanContainer::run("once");
    let marker = unique("once");
    let body =
        format!(r#"{{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","echo {marker}; sleep 2"]}}"#);
    let id = common::create_exec_on(&gate.socket, &c.0, &body);
    let mut first = gate.connect();
    first
        .write_all(&common::start_request("/v1.41", &id, r#"{"Detach":false,"Tty":false}"#, true))
        .expect("start");
    let seen = read_until(&mut first, marker.as_bytes());
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&seen));
    let (status, answer) = exchange(
        &gate.socket,
        &common::start_request("/v1.41", &id, r#"{"Detach":false,"Tty":false}"#, true),
    );
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("already started through execgate"));
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    let end = common::exec_end_of(&gate.audit, &marker);
    assert_eq!((end["reason"].as_str(), end["exit_code"].as_i64()), (Some("exited"), Some(0)), "{end}");
}
