//! Attacks on the identity an exec runs as, tried against the real daemon under
//! the default policy (which refuses uid 0). Each first proves on the daemon
//! itself that the attack works there, so a test cannot pass because the attack
//! quietly failed; then it counts root execs through execgate: there must be none.
//!
//! The passwd files are planted the way an attacker with execgate's socket
//! would: `PUT /containers/{id}/archive` through execgate (it passes untouched).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Container, Gate, direct_docker, frames, read_response, start_request};
use serde_json::Value;

/// A tar holding one file, `path` (relative to `/`), with `content`.
fn file_tar(path: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, content).expect("tar entry");
    builder.into_inner().expect("tar")
}

/// One raw exchange on a fresh connection: (status, body).
fn exchange(socket: &std::path::Path, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(request).expect("write");
    let (head, body) = read_response(&mut stream);
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, body)
}

/// Replaces the container's `/etc/passwd` through `socket` (the archive API).
fn plant(socket: &std::path::Path, container: &str, content: &[u8]) {
    plant_file(socket, container, "etc/passwd", content);
}

/// Replaces one file of the container through `socket` (the archive API).
fn plant_file(socket: &std::path::Path, container: &str, path: &str, content: &[u8]) {
    let tar = file_tar(path, content);
    let mut request = format!(
        "PUT /v1.41/containers/{container}/archive?path=/ HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    )
    .into_bytes();
    request.extend_from_slice(&tar);
    let (status, body) = exchange(socket, &request);
    assert_eq!(status, 200, "archive PUT: {}", String::from_utf8_lossy(&body));
}

fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Creates and starts `id -u` as `user` (a JSON string literal, or `None` for
/// the container's default) through `socket`. `Ok((exec_id, uid printed))`, or
/// `Err(status)` when execgate refused at create or start.
fn run_id(socket: &std::path::Path, container: &str, user: Option<&str>) -> Result<(String, String), u16> {
    let user = user.map(|u| format!(r#","User":{u}"#)).unwrap_or_default();
    let body = format!(r#"{{"AttachStdout":true,"AttachStderr":true,"Cmd":["id","-u"]{user}}}"#);
    let (status, answer) =
        exchange(socket, &post_json(&format!("/v1.41/containers/{container}/exec"), &body));
    if status != 201 {
        return Err(status);
    }
    let id = serde_json::from_slice::<Value>(&answer).expect("json")["Id"].as_str().expect("Id").to_owned();
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(&start_request("/v1.41", &id, r#"{"Tty":false}"#, true)).expect("start");
    let mut data = common::read_until(&mut stream, b"\r\n\r\n");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
        return Err(status);
    }
    stream.read_to_end(&mut data).expect("read stream");
    let out: Vec<u8> =
        frames(&data[split..]).into_iter().filter(|(s, _)| *s == 1).flat_map(|(_, p)| p).collect();
    Ok((id, String::from_utf8_lossy(&out).trim().to_owned()))
}

/// The daemon's own record of an exec.
fn daemon_exec(id: &str) -> Value {
    let mut stream = UnixStream::connect(common::docker_sock()).expect("daemon");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(format!("GET /exec/{id}/json HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes()).expect("write");
    let (_, body) = read_response(&mut stream);
    serde_json::from_slice(&body).expect("exec inspect")
}

/// What the daemon itself runs `-u spec` as, with no execgate in the way.
fn direct_uid(container: &str, spec: &str) -> String {
    let out = direct_docker().args(["exec", "-u", spec, container, "id", "-u"]).output().expect("exec");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const REAL_APP: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";

// Regression: the daemon trims each passwd line with Go's bytes.TrimSpace
// (Unicode whitespace) and compares names as bytes; execgate trimmed ASCII only
// and decoded lossily, so each of these ran `-u app` (or `-u \u{fffd}`) as root
// while execgate judged uid 1000.
#[test]
fn planted_passwd_lines_never_yield_a_root_exec() {
    let gate = Gate::start();
    let c = Container::run("planted", &[]);
    let whitespace = ["\u{b}", "\u{85}", "\u{a0}", "\u{3000}", "\u{2028}", "\u{1680}", "\u{c}"];
    let mut cases: Vec<(String, Vec<u8>, String)> = whitespace
        .iter()
        .map(|ws| {
            let passwd = format!("{ws}app:x:0:0::/:/bin/sh\n{REAL_APP}");
            (format!("leading {ws:?}"), passwd.into_bytes(), r#""app""#.to_owned())
        })
        .collect();
    cases.push(("a bare name line".into(), format!("app\u{b}\n{REAL_APP}").into_bytes(), r#""app""#.into()));
    let mut invalid = b"\xff:x:1000:1000::/:/bin/sh\n".to_vec();
    invalid.extend_from_slice("\u{fffd}:x:0:0::/:/bin/sh\n".as_bytes());
    invalid.extend_from_slice(REAL_APP.as_bytes());
    cases.push(("an invalid UTF-8 name".into(), invalid, r#""\ufffd""#.into()));

    for (what, passwd, user) in &cases {
        plant(&gate.socket, &c.name, passwd);
        let spec: String = serde_json::from_str(user).expect("spec");
        // The attack is real: the daemon itself runs this spec as root.
        assert_eq!(direct_uid(&c.name, &spec), "0", "{what}: the planted file should fool the daemon");
        match run_id(&gate.socket, &c.name, Some(user)) {
            Err(status) => assert_eq!(status, 403, "{what}"),
            Ok((id, uid)) => {
                panic!(
                    "{what}: execgate let `-u {spec}` run (uid {uid}, stored {})",
                    daemon_exec(&id)["ProcessConfig"]
                )
            }
        }
    }
    // And with the real file back, `app` runs, as uid 1000.
    plant(&gate.socket, &c.name, REAL_APP.as_bytes());
    let (id, uid) = run_id(&gate.socket, &c.name, Some(r#""app""#)).expect("app runs");
    assert_eq!(uid, "1000");
    assert_eq!(daemon_exec(&id)["ProcessConfig"]["user"], "1000:1000");
}

// Regression (the swap race, 75 of 100 root before): one client keeps swapping
// the container's passwd between app=1000 and app=0 while another creates and
// starts execs with no User in a container whose default user is `app`. The
// daemon used to resolve the name again milliseconds after execgate did.
#[test]
fn swapping_passwd_during_create_and_start_never_yields_a_root_exec() {
    // (With `--pin-user off` this test fails: 53 of 56 allowed execs ran as root.)
    let gate = Gate::start();
    let c = Container::run("swap", &[]);
    let rooted = "root:x:0:0:root:/root:/bin/sh\napp:x:0:0:app:/home/app:/bin/sh\n";
    plant(&gate.socket, &c.name, rooted.as_bytes());
    assert_eq!(direct_uid(&c.name, "app"), "0", "the swapped-in file should make app root on the daemon");
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, socket, name) = (stop.clone(), swaps.clone(), gate.socket.clone(), c.name.clone());
        std::thread::spawn(move || {
            let files = [REAL_APP.as_bytes(), rooted.as_bytes()];
            while !stop.load(Ordering::Relaxed) {
                plant(&socket, &name, files[swaps.load(Ordering::Relaxed) % 2]);
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (mut allowed, mut refused, mut root) = (0, 0, Vec::new());
    for _ in 0..100 {
        match run_id(&gate.socket, &c.name, None) {
            Ok((id, uid)) => {
                allowed += 1;
                let stored = daemon_exec(&id)["ProcessConfig"]["user"].clone();
                if uid != "1000" || stored != "1000:1000" {
                    root.push(format!("{id}: uid {uid}, stored {stored}"));
                }
            }
            Err(status) => {
                assert_eq!(status, 403);
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    assert!(
        root.is_empty(),
        "{} of {allowed} allowed execs did not run as the judged uid 1000: {root:?}",
        root.len()
    );
    // Not vacuous: the swap was live, execgate saw both files, and execs ran.
    assert!(swaps.load(Ordering::Relaxed) >= 20, "only {} swaps", swaps.load(Ordering::Relaxed));
    assert!(
        allowed >= 10 && refused >= 10,
        "{allowed} allowed, {refused} refused: the race was not exercised"
    );
}

/// The supplementary groups the daemon itself gives `-u spec`, with no execgate.
fn direct_groups(container: &str, spec: &str) -> String {
    let out = direct_docker().args(["exec", "-u", spec, container, "id", "-G"]).output().expect("exec");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

// runc before 1.3 (both test bed daemons run 1.1.5) looks an exec's gids up
// again by *name* in the container's /etc/group: a line named `1000` with gid 0
// turns a pinned `1000:1000` into a member of root's group. The exec API cannot
// carry the numbers, so execgate refuses when the group file would do that.
#[test]
fn a_group_file_that_renames_the_execs_gid_to_root_is_refused() {
    let gate = Gate::start();
    let c = Container::run("groups", &[]);
    let renamed = b"root:x:0:\n1000:x:0:\napp:x:1000:\n";
    plant_file(&gate.socket, &c.name, "etc/group", renamed);
    let groups = direct_groups(&c.name, "1000:1000");
    assert!(groups.split_whitespace().any(|g| g == "0"), "the runtime should add group 0 here: {groups}");
    for user in [None, Some(r#""app""#), Some(r#""1000:1000""#)] {
        match run_id(&gate.socket, &c.name, user) {
            Err(status) => assert_eq!(status, 403, "{user:?}"),
            Ok((id, uid)) => panic!("{user:?} ran (uid {uid}, exec {id}) with a group file that adds gid 0"),
        }
    }
    // With a sane group file the same exec runs, and only in its own group.
    plant_file(&gate.socket, &c.name, "etc/group", b"root:x:0:\napp:x:1000:\n");
    let (id, uid) = run_id(&gate.socket, &c.name, Some(r#""app""#)).expect("app runs");
    assert_eq!(uid, "1000");
    assert_eq!(direct_groups(&c.name, "1000:1000"), "1000");
    assert_eq!(daemon_exec(&id)["ProcessConfig"]["user"], "1000:1000");
}
