//! Raw HTTP through execgate: upgrades, half-close, keep-alive classification,
//! and the answers execgate gives itself — checked byte by byte.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{
    Container, Gate, TempDir, create_exec_on, frames, raw_exchange, read_response, read_until, start_request,
};

fn stdout_of(stream: &[u8]) -> String {
    frames(stream)
        .into_iter()
        .filter(|(id, _)| *id == 1)
        .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
        .collect()
}

/// Reads the 101 head and returns whatever stream bytes came with it.
fn expect_upgrade(stream: &mut UnixStream, request: &[u8]) -> Vec<u8> {
    let data = raw_exchange(stream, request, b"\r\n\r\n");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: tcp"), "{head}");
    data[split..].to_vec()
}

#[test]
fn upgrade_then_half_close_delivers_all_output() {
    let gate = Gate::start();
    let c = Container::run("halfclose", &[]);
    // Output after stdin's EOF proves the daemon saw the half-close and that the
    // return direction stayed open for it.
    let id = create_exec_on(
        &gate.socket,
        &c.name,
        r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","cat; sleep 0.3; echo after-eof"]}"#,
    );
    let mut stream = gate.connect();
    let mut got =
        expect_upgrade(&mut stream, &start_request("/v1.41", &id, r#"{"Detach":false,"Tty":false}"#, true));
    stream.write_all(b"typed line\n").expect("stdin");
    stream.shutdown(Shutdown::Write).expect("half-close");
    stream.read_to_end(&mut got).expect("read to EOF");
    assert_eq!(stdout_of(&got), "typed line\nafter-eof\n");
}

#[test]
fn stdin_sent_with_the_request_head_is_not_lost() {
    let gate = Gate::start();
    let c = Container::run("eager", &[]);
    let id =
        create_exec_on(&gate.socket, &c.name, r#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"]}"#);
    let mut stream = gate.connect();
    // Request and stdin in one write: hyper reads past the head, and those bytes
    // belong to the stream.
    let mut request = start_request("", &id, r#"{"Tty":false}"#, true);
    request.extend_from_slice(b"eager bytes\n");
    let mut got = expect_upgrade(&mut stream, &request);
    stream.shutdown(Shutdown::Write).expect("half-close");
    stream.read_to_end(&mut got).expect("read");
    assert_eq!(stdout_of(&got), "eager bytes\n");
}

/// The `exec.end` record of `exec_id`, waiting up to 10 s for it.
fn exec_end(audit: &std::path::Path, exec_id: &str) -> serde_json::Value {
    for _ in 0..100 {
        let logs = std::fs::read_dir(audit).expect("audit dir").filter_map(|e| e.ok().map(|e| e.path()));
        for log in logs.filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit-"))) {
            for line in std::fs::read_to_string(&log).expect("log").lines() {
                let record: serde_json::Value = serde_json::from_str(line).expect("record");
                if record["event"] == "exec.end" && record["exec_id"] == exec_id {
                    return record;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no exec.end for {exec_id} in {}", audit.display());
}

/// Sends a start or attach without upgrade headers, then `stdin`, then ends
/// stdin; returns the answer's head and everything until the server closed.
fn without_upgrade(socket: &std::path::Path, request: &[u8], stdin: &[u8]) -> (String, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(request).expect("request");
    let mut data = read_until(&mut stream, b"\r\n\r\n");
    stream.write_all(stdin).expect("stdin");
    stream.shutdown(Shutdown::Write).expect("half-close");
    stream.read_to_end(&mut data).expect("read until the server closes");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    (String::from_utf8_lossy(&data[..split]).to_ascii_lowercase(), data[split..].to_vec())
}

// Regression (dockerode's `exec.start({})`, the attach in its `docker.run`):
// without `Upgrade` the daemon answers 200 raw-stream and streams until it
// closes. execgate used to refuse these with 400.
#[test]
fn a_start_without_upgrade_headers_streams_like_the_daemon_and_is_recorded() {
    let gate = Gate::start();
    let c = Container::run("noupgrade", &[]);
    let body = r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","cat; echo after-eof; exit 4"]}"#;
    let mut answers = Vec::new();
    for socket in [std::path::PathBuf::from(common::docker_sock()), gate.socket.clone()] {
        let id = create_exec_on(&socket, &c.name, body);
        let request = start_request("/v1.41", &id, r#"{"Detach":false,"Tty":false}"#, false);
        let (head, stream) = without_upgrade(&socket, &request, b"typed\n");
        assert!(head.contains(" 200 ok\r\n"), "{head}");
        assert!(head.contains("content-type: application/vnd.docker.raw-stream\r\n"), "{head}");
        assert!(!head.contains("content-length") && !head.contains("transfer-encoding"), "{head}");
        answers.push((id, stdout_of(&stream)));
    }
    assert_eq!(answers[0].1, "typed\nafter-eof\n", "direct");
    assert_eq!(answers[1].1, answers[0].1, "through execgate");
    let id = &answers[1].0;
    let end = exec_end(&gate.audit, id);
    assert_eq!(end["exit_code"], 4, "{end}");
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["output_captured"], true, "{end}");
}

#[test]
fn an_attach_without_upgrade_headers_streams_like_the_daemon() {
    let gate = Gate::start();
    let name = common::unique("attachnoup");
    let created = common::direct_docker()
        .args(["create", "-i", "--name", &name, common::IMAGE, "sh", "-c", "cat; echo bye"])
        .output()
        .expect("create");
    assert!(created.status.success(), "{created:?}");
    let _cleanup = Container { name: name.clone() };
    let attach = format!(
        "POST /v1.41/containers/{name}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    );
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(attach.as_bytes()).expect("attach");
    let mut data = read_until(&mut stream, b"\r\n\r\n");
    let started = common::direct_docker().args(["start", &name]).output().expect("start");
    assert!(started.status.success(), "{started:?}");
    stream.write_all(b"line\n").expect("stdin");
    stream.shutdown(Shutdown::Write).expect("half-close");
    stream.read_to_end(&mut data).expect("read until close");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).to_ascii_lowercase();
    assert!(head.contains(" 200 ok\r\n"), "{head}");
    assert!(head.contains("content-type: application/vnd.docker.raw-stream\r\n"), "{head}");
    assert_eq!(stdout_of(&data[split..]), "line\nbye\n");
}

#[test]
fn detached_start_without_upgrade_runs() {
    let gate = Gate::start();
    let c = Container::run("detach", &[]);
    let id = create_exec_on(&gate.socket, &c.name, r#"{"Cmd":["sh","-c","echo ran > /tmp/detached"]}"#);
    let mut stream = gate.connect();
    stream.write_all(&start_request("/v1.41", &id, r#"{"detach":true}"#, false)).expect("write");
    let (head, _) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for _ in 0..50 {
        let out =
            common::direct_docker().args(["exec", &c.name, "cat", "/tmp/detached"]).output().expect("exec");
        if out.stdout == b"ran\n" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("detached exec did not run");
}

#[test]
fn each_request_on_a_keep_alive_connection_is_classified() {
    let gate = Gate::start();
    let c = Container::run("keepalive", &[]);
    let id = create_exec_on(&gate.socket, &c.name, r#"{"AttachStdout":true,"Cmd":["echo","third"]}"#);
    let mut stream = gate.connect();
    // Two pipelined pings in one write, then an exec start on the same connection.
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /v1.41/_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        .expect("write");
    // Both answers may come in one read: count them in what was read so far.
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    while answers.windows(6).filter(|w| *w == b"\r\n\r\nOK").count() < 2 {
        let n = stream.read(&mut buf).expect("read the ping answers");
        assert!(n > 0, "EOF after {}", String::from_utf8_lossy(&answers));
        answers.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answers);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(text.ends_with("\r\n\r\nOK"), "nothing may follow the second answer: {text}");
    let mut got = expect_upgrade(&mut stream, &start_request("/v1.41", &id, "{}", true));
    stream.read_to_end(&mut got).expect("read");
    assert_eq!(stdout_of(&got), "third\n");
}

#[test]
fn other_protocol_switches_are_bridged() {
    let gate = Gate::start();
    let mut stream = gate.connect();
    // BuildKit's session endpoint answers 101 and then speaks HTTP/2.
    let request = "POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
                   X-Docker-Expose-Session-Uuid: execgate-test\r\nX-Docker-Expose-Session-Name: t\r\n\
                   X-Docker-Expose-Session-Sharedkey: k\r\n\r\n";
    let data = raw_exchange(&mut stream, request.as_bytes(), b"\r\n\r\n");
    let head = String::from_utf8_lossy(&data).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // Here the daemon is the HTTP/2 *client* (the CLI serves the session): it
    // speaks first with the preface and its SETTINGS frame.
    let mut got = data[data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4..].to_vec();
    while got.len() < 24 + 9 {
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "EOF before the daemon's HTTP/2 preface");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[..24], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(got[24 + 3], 0x4, "expected the daemon's SETTINGS frame");
    // The other direction: our SETTINGS frame must reach it, and it acknowledges.
    stream.write_all(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00").expect("settings");
    let mut rest = got[24..].to_vec();
    loop {
        while rest.len() >= 9 {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            if rest.len() < 9 + len {
                break;
            }
            if rest[3] == 0x4 && rest[4] & 0x1 == 0x1 {
                return; // SETTINGS ACK
            }
            rest.drain(..9 + len);
        }
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "EOF before the daemon acknowledged our SETTINGS");
        rest.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn http2_and_garbage_are_refused_not_hung() {
    let gate = Gate::start();
    for request in [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], b"\x16\x03\x01\x02\x00garbage\r\n\r\n"] {
        let mut stream = gate.connect();
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        stream.write_all(request).expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"), "{text}");
    }
    // The proxy is still serving.
    let mut stream = gate.connect();
    stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n").expect("write");
    assert!(read_response(&mut stream).0.starts_with("HTTP/1.1 200"));
}

#[test]
fn invalid_percent_encoding_is_a_bad_request() {
    let gate = Gate::start();
    let mut stream = gate.connect();
    stream
        .write_all(b"POST /containers/x/%zzexec HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n")
        .expect("write");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("invalid percent-encoding"));
}

#[test]
fn oversized_exec_start_bodies_get_413() {
    let gate = Gate::start();
    let mut stream = gate.connect();
    let body = format!("{{\"Detach\":false,\"Tty\":false{}}}", " ".repeat(2 * 1024 * 1024));
    let request = start_request("/v1.41", "someid", &body, true);
    // The refusal may come before the whole body is written; ignore a broken pipe.
    let _ = stream.write_all(&request);
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("larger than 1048576 bytes"));
}

#[test]
fn daemon_404_passes_through_untouched() {
    let gate = Gate::start();
    let mut stream = gate.connect();
    stream
        .write_all(b"GET /v1.41/containers/no-such-execgate/json HTTP/1.1\r\nHost: d\r\n\r\n")
        .expect("write");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(value["message"], "No such container: no-such-execgate");
}

#[test]
fn unreachable_daemon_gives_502_and_recovers() {
    common::require_daemon();
    let dir = TempDir::new("recover");
    let upstream = dir.path().join("daemon.sock");
    let gate = Gate::start_with(&upstream, &[]);
    let mut stream = gate.connect();
    stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n").expect("write");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let message = value["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!("execgate: cannot reach the Docker daemon at {}: ", upstream.display())),
        "{message}"
    );
    let cli = gate.run(&["version"]);
    assert!(String::from_utf8_lossy(&cli.stderr).contains("execgate: cannot reach the Docker daemon"));

    // The daemon "comes back" at that path; the same client connection recovers.
    std::os::unix::fs::symlink(common::docker_sock(), &upstream).expect("symlink");
    stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n").expect("write");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"OK");
    let _ = read_until; // keep the helper set identical across test binaries
}
