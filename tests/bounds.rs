//! Resource bounds against the real daemon: the request-head timeout, the
//! connection limit and its refusal, the pause after a failed accept, and the
//! idle timeout of pooled daemon connections.
//!
//! Timing: every wait is a poll with a generous deadline, and every "not
//! before" bound is one the proxy's own timer guarantees, so a loaded machine
//! makes these tests slower, not wrong.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Container, Gate, IMAGE, create_exec_on, direct_docker, docker_sock, ok_stdout, read_response, read_until,
    start_request, unique,
};

const PING: &[u8] = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n";

/// The stream sockets a process holds, from `/proc/<pid>/fd` and `/proc/net/unix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sockets {
    /// Accepted client connections (they carry the listening socket's path).
    clients: usize,
    /// Connected sockets without a path: execgate's daemon connections, and
    /// the runtime's own socketpair (a constant).
    unnamed: usize,
    /// Every open fd.
    fds: usize,
}

fn sockets_of(pid: u32) -> Sockets {
    // Inode → (flags, type, state, has a path).
    let table = std::fs::read_to_string("/proc/net/unix").expect("/proc/net/unix");
    let mut kinds = std::collections::HashMap::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
        let inode: u64 = f[6].parse().unwrap_or(0);
        kinds.insert(inode, (hex(f[3]), hex(f[4]), hex(f[5]), f.len() > 7));
    }
    let mut out = Sockets { clients: 0, unnamed: 0, fds: 0 };
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return out };
    for entry in entries.flatten() {
        out.fds += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let target = target.to_string_lossy().into_owned();
        let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) else {
            continue;
        };
        const LISTENING: u32 = 0x10000;
        const STREAM: u32 = 1;
        const CONNECTED: u32 = 3;
        match kinds.get(&inode.parse().unwrap_or(0)) {
            Some(&(flags, STREAM, _, true)) if flags & LISTENING == 0 => out.clients += 1,
            Some(&(_, STREAM, CONNECTED, false)) => out.unnamed += 1,
            _ => {}
        }
    }
    out
}

/// Polls `probe` every 50 ms until it holds, or panics after `within`.
fn wait_for(within: Duration, what: &str, mut probe: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + within;
    loop {
        let Some(why_not) = probe() else { return };
        assert!(Instant::now() < deadline, "{what} within {within:?}: {why_not}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until EOF (or an error such as ECONNRESET after the answer) within `within`.
fn read_to_close(stream: &mut UnixStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "connection still open after {within:?}; read so far: {}",
                    String::from_utf8_lossy(&out)
                )
            }
            Err(_) => return out,
        }
    }
}

fn ping_ok(stream: &mut UnixStream) {
    stream.write_all(PING).expect("write ping");
    let (head, body) = read_response(stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"OK");
}

fn message_of(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    value["message"].as_str().unwrap_or_default().to_owned()
}

/// Reproduces "a client sending 1 byte/s was served after 37 s": a head that
/// trickles in never completes in time, so the client is cut at the head
/// timeout (told why), however steadily it sends.
#[test]
fn a_trickling_request_head_is_cut_at_the_head_timeout() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--head-timeout", "1s"]);
    let mut stream = gate.connect();
    stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let request = b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\n\r\n";
    let started = Instant::now();
    let (mut got, mut sent) = (Vec::new(), 0);
    let mut buf = [0u8; 4096];
    // One byte every 300 ms: each arrives well within the timeout, the whole
    // head (60 bytes, 18 s) never does.
    for byte in request {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        sent += 1;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    got.extend(read_to_close(&mut stream, Duration::from_secs(20)));
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
    assert_eq!(message_of(&got), "execgate: request head not received within 1s; closing the connection");
    assert!(sent < request.len(), "the whole head went out ({sent} bytes) before the cut");
    assert!(elapsed >= Duration::from_millis(900), "cut before the timeout: {elapsed:?}");
}

/// "200 clients that sent half a request line stayed connected for 60 s":
/// now each is answered 408 and closed at the head timeout, and execgate lets
/// go of every one of them.
#[test]
fn half_a_request_line_then_silence_is_closed_at_the_head_timeout() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--head-timeout", "1s"]);
    let started = Instant::now();
    let mut streams: Vec<UnixStream> = (0..50)
        .map(|_| {
            let mut stream = gate.connect();
            stream.write_all(b"GET /_pi").expect("half a request line");
            stream
        })
        .collect();
    wait_for(Duration::from_secs(10), "execgate to hold the 50 connections", || {
        let held = sockets_of(gate.pid()).clients;
        (held < 50).then(|| format!("{held} held"))
    });
    for stream in &mut streams {
        let answer = read_to_close(stream, Duration::from_secs(30));
        assert!(answer.starts_with(b"HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&answer));
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout");
    wait_for(Duration::from_secs(10), "execgate to close its side of them", || {
        let held = sockets_of(gate.pid()).clients;
        (held > 0).then(|| format!("{held} still held"))
    });
}

/// `docker events` and `docker logs -f` read one long answer whose request
/// head arrived long ago: the head timer does not run while an answer streams.
#[test]
fn long_answers_outlive_the_head_timeout() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--head-timeout", "1s"]);

    // A raw `GET /events`, idle for three head timeouts before its event comes.
    let mut events = gate.connect();
    events.write_all(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n").expect("events request");
    let head = read_until(&mut events, b"\r\n\r\n");
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));

    // `docker logs -f` through execgate, of a container that writes a line
    // only after three head timeouts.
    let name = unique("logs-f");
    ok_stdout(
        &direct_docker()
            .args(["run", "-d", "--user", "app", "--name", &name, IMAGE])
            .args(["sh", "-c", "echo early-line; sleep 3; echo late-line; sleep 3600"])
            .output()
            .expect("docker run"),
    );
    let container = Container { name: name.clone() };
    let mut follower = gate
        .docker()
        .args(["logs", "-f", &container.name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker logs -f");
    let mut follower_out = follower.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = follower_out.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.windows(9).any(|w| w == b"late-line") {
                break;
            }
        }
        out
    });

    std::thread::sleep(Duration::from_secs(3));
    let marker = unique("event");
    ok_stdout(&direct_docker().args(["create", "--name", &marker, IMAGE, "true"]).output().expect("create"));
    let _marked = Container { name: marker.clone() };
    let seen = read_until(&mut events, marker.as_bytes());
    assert!(
        seen.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the events stream ended before the event: {}",
        String::from_utf8_lossy(&seen)
    );

    // `read` above returns at "late-line" or at EOF (the follower cut); the
    // container writes it three seconds in, so allow a slow machine plenty.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let out = String::from_utf8_lossy(&reader.join().expect("reader")).into_owned();
    assert!(out.contains("early-line") && out.contains("late-line"), "logs -f output: {out:?}");
}

/// Decided behaviour for keep-alive: the head timer runs from the end of each
/// answer, so a connection idle for less than it serves the next request, and
/// one idle for longer is closed quietly (no 408 to a client that asked
/// nothing; nothing half-read). Clients that keep connections (the docker
/// CLI's Go transport) see the close and dial again: an exec whose session
/// outlasts the timeout still gets its exit code, which the CLI asks for on
/// the keep-alive connection it created the exec with.
#[test]
fn idle_keep_alive_connections_serve_within_and_close_quietly_after_the_head_timeout() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--head-timeout", "2s"]);
    let mut stream = gate.connect();
    ping_ok(&mut stream);
    std::thread::sleep(Duration::from_millis(200));
    ping_ok(&mut stream);

    let idle_from = Instant::now();
    let rest = read_to_close(&mut stream, Duration::from_secs(30));
    assert!(rest.is_empty(), "an idle connection got bytes: {}", String::from_utf8_lossy(&rest));
    assert!(idle_from.elapsed() >= Duration::from_secs(1), "closed long before the timeout");

    let c = Container::run("idle-ka", &[]);
    let out = gate.run(&["exec", &c.name, "sh", "-c", "sleep 5; echo done; exit 7"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(7), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// Past `--max-connections` a client is answered at once with 503 and the
/// reason, not left hanging; the admitted ones keep working, a stream counts
/// as the connection it came from, and a place freed is given to the next.
#[test]
fn connections_past_the_limit_are_refused_with_503_at_once() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--max-connections", "5"]);
    let c = Container::run("cap", &[]);
    // An exec session holds one place for as long as it streams.
    let id =
        create_exec_on(&gate.socket, &c.name, r#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"]}"#);
    // The create's connection is closed; its place is free once execgate sees that.
    wait_for(Duration::from_secs(10), "the create's connection to be let go", || {
        let held = sockets_of(gate.pid()).clients;
        (held > 0).then(|| format!("{held} held"))
    });
    let mut session = gate.connect();
    session.write_all(&start_request("/v1.41", &id, r#"{"Tty":false}"#, true)).expect("start");
    let head = read_until(&mut session, b"\r\n\r\n");
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));

    let mut held: Vec<UnixStream> = (0..4).map(|_| gate.connect()).collect();
    for stream in &mut held {
        ping_ok(stream);
    }

    let mut sixth = gate.connect();
    let asked = Instant::now();
    sixth.write_all(PING).expect("write");
    let answer = read_to_close(&mut sixth, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    assert_eq!(message_of(&answer), "execgate: too many connections (5 open, limit 5); try again later");
    assert!(asked.elapsed() < Duration::from_secs(5), "the refusal took {:?}", asked.elapsed());

    // What the docker CLI prints.
    let out = gate.run(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("execgate: too many connections (5 open, limit 5); try again later"), "{stderr}");

    for stream in &mut held {
        ping_ok(stream);
    }
    session.write_all(b"still streaming\n").expect("stdin");
    let echoed = read_until(&mut session, b"still streaming");
    assert!(echoed.windows(15).any(|w| w == b"still streaming"));

    // Ending the session frees its place.
    drop(session);
    wait_for(Duration::from_secs(20), "a place to be free after the session ended", || {
        let mut next = gate.connect();
        next.write_all(PING).ok()?;
        let (head, _) = read_response(&mut next);
        (!head.starts_with("HTTP/1.1 200")).then_some(head)
    });
    for stream in &mut held {
        ping_ok(stream);
    }
}

/// With no `--max-connections` the limit comes from the fd limit (here 160:
/// (160 − 96 reserved) / 4 fds each = 16), so a crowd of clients is refused
/// with 503 instead of hanging in the backlog while accept fails with EMFILE.
#[test]
fn the_default_limit_follows_the_fd_limit_and_refuses_instead_of_hanging() {
    let gate = Gate::start_wrapped(&["prlimit", "--nofile=160:160"], Path::new(docker_sock()), &[]);
    // The log is written by a background thread: wait for the line.
    wait_for(Duration::from_secs(10), "the limit to be logged", || {
        let log = gate.log_text();
        (!log.contains("max_connections=16")).then_some(log)
    });
    // The harness's readiness probe holds a place until execgate has
    // accepted it and seen it closed. Connections are accepted in order, so
    // once a later one is answered, the probe was accepted.
    ping_ok(&mut gate.connect());
    wait_for(Duration::from_secs(10), "the readiness probe to be let go", || {
        let held = sockets_of(gate.pid()).clients;
        (held > 0).then(|| format!("{held} held"))
    });
    let mut streams: Vec<UnixStream> = (0..60).map(|_| gate.connect()).collect();
    let (mut served, mut refused) = (0, 0);
    for stream in &mut streams {
        // Refusals past the 32 that wait for a request are answered and
        // closed at once: the write may then fail, the answer is still there.
        let _ = stream.write_all(PING);
        let (head, _) = read_response(stream);
        if head.starts_with("HTTP/1.1 200") {
            served += 1;
        } else {
            assert!(head.starts_with("HTTP/1.1 503"), "{head}");
            refused += 1;
        }
    }
    assert_eq!((served, refused), (16, 44));
    assert!(!gate.log_text().contains("accept failed"), "{}", gate.log_text());
    let held = sockets_of(gate.pid());
    assert!(held.fds < 160, "{held:?}");
}

/// An fd table that fills anyway (here: the limit lowered under a running
/// execgate) makes accept fail with EMFILE: execgate pauses instead of
/// spinning on the readable listener, says so once, and accepts again once
/// fds are free.
#[test]
fn emfile_on_accept_backs_off_and_recovers() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--max-connections", "1000"]);
    // Nothing may come or go but the crowd: the readiness probe and this
    // ping (with its pinned daemon connection) are gone first.
    ping_ok(&mut gate.connect());
    wait_for(Duration::from_secs(10), "the first connections to be let go", || {
        let held = sockets_of(gate.pid());
        (held.clients > 0).then(|| format!("{held:?}"))
    });
    let base = sockets_of(gate.pid()).fds;
    let limit = base + 10;
    let status = Command::new("prlimit")
        .args(["--pid", &gate.pid().to_string(), &format!("--nofile={limit}:{limit}")])
        .status()
        .expect("prlimit");
    assert!(status.success());

    // Ten fit; the rest wait in the listener's backlog while accept fails.
    let crowd: Vec<UnixStream> = (0..30).map(|_| gate.connect()).collect();
    wait_for(Duration::from_secs(10), "accept to fail with EMFILE", || {
        let log = gate.log_text();
        (!log.contains("accept failed")).then(|| "no accept failure logged".to_owned())
    });
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    };
    let (ticks, from) = (cpu(gate.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let used = (cpu(gate.pid()) - ticks) as f64 / 100.0 / from.elapsed().as_secs_f64();
    // A retry loop without a pause burns a whole core here.
    assert!(used < 0.3, "execgate used {:.0} % of a core while accept failed", used * 100.0);
    assert_eq!(gate.log_text().matches("accept failed").count(), 1, "{}", gate.log_text());

    drop(crowd);
    wait_for(Duration::from_secs(20), "execgate to serve again", || {
        let mut stream = UnixStream::connect(&gate.socket).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(PING).ok()?;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => None,
            other => Some(format!("{other:?}")),
        }
    });
    wait_for(Duration::from_secs(10), "the recovery to be logged", || {
        (!gate.log_text().contains("accepting connections again")).then(|| "not yet".to_owned())
    });
    // The retries were paced: 10 ms doubling to 500 ms, so a few per second,
    // not one per timer tick (a zero pause still burns little CPU, but retries
    // a thousand times a second).
    let log = gate.log_text();
    let line = log.lines().find(|l| l.contains("accepting connections again")).expect("recovery line");
    let field = |name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}"));
        line[at + name.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable {name} in {line}"))
    };
    let (failures, lasted_ms) = (field("failures"), field("lasted_ms"));
    assert!(failures <= 10 + lasted_ms / 250, "{failures} failed accepts in {lasted_ms} ms: {line}");
}

/// "After a burst of N sessions, about N pooled connections to dockerd stay
/// open for as long as anything is watched": each session's end asks the
/// daemon about its exec over the shared pool, a burst of ends opens many
/// pooled connections at once, and without a reaper they stayed (a watched
/// detached exec polling the pool only ever reuses the newest). With
/// `--daemon-idle-timeout` they are closed within two timeouts of their use.
#[test]
fn pooled_daemon_connections_are_closed_after_the_idle_timeout() {
    let gate = Gate::start_with(Path::new(docker_sock()), &["--daemon-idle-timeout", "3s"]);
    let c = Container::run("pool", &[]);
    let pid = gate.pid();

    // Something watched for the whole test: a detached exec's exit is polled.
    let out = gate.run(&["exec", "-d", &c.name, "sleep", "600"]);
    ok_stdout(&out);
    // The start-up version probe's pooled connection is reaped within two
    // timeouts; the watcher's stays in use. That is the baseline.
    std::thread::sleep(Duration::from_secs(7));
    let baseline = sockets_of(pid).unnamed;

    // A burst of sessions that end together.
    const SESSIONS: usize = 32;
    let ids: Vec<String> = (0..SESSIONS)
        .map(|_| {
            create_exec_on(&gate.socket, &c.name, r#"{"AttachStdout":true,"Cmd":["sh","-c","sleep 2"]}"#)
        })
        .collect();
    let mut streams: Vec<UnixStream> = ids
        .iter()
        .map(|id| {
            let mut stream = gate.connect();
            stream.write_all(&start_request("/v1.41", id, r#"{"Tty":false}"#, true)).expect("start");
            stream
        })
        .collect();
    for stream in &mut streams {
        let _ = read_to_close(stream, Duration::from_secs(60));
    }
    drop(streams);

    // Right after the burst: its streams are closed, its pooled connections not yet.
    let mut peak = 0;
    let burst_over = Instant::now();
    while burst_over.elapsed() < Duration::from_millis(1500) {
        peak = peak.max(sockets_of(pid).unnamed);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        peak > baseline,
        "the burst left no extra pooled connection to reap (baseline {baseline}, peak {peak}); \
         this test then proves nothing"
    );
    wait_for(Duration::from_secs(30), "the burst's pooled daemon connections to be closed", || {
        let now = sockets_of(pid).unnamed;
        (now > baseline).then(|| format!("{now} daemon-side sockets, baseline {baseline}, peak {peak}"))
    });
}
