//! The lockdown pack (`policies/examples/lockdown`) against the real daemon.
//! Each door it closes is tried twice with the same request: through a gate
//! loaded with `--policy policies/execgate.rego --policy
//! policies/examples/lockdown`, where it is refused (403, `execgate: request
//! denied: …`), nothing happens on the daemon (read straight from the daemon's
//! socket: no container, volume or plugin, no changed HostConfig, no file
//! written) and a `request` record with decision `deny` is in the audit log;
//! and through a gate with the default pack, where it works (its effect is
//! read back: capabilities, namespaces, host files seen through the bind) and
//! no `request` record is written (the default pack has no request policy).
//!
//! Doors: `--privileged`; `--cap-add` (also `"CapAdd":"ſys_admin"`); host
//! pid, ipc, net and userns; binds of `/`, the Docker socket, the audit
//! directory and `/var/run`, as `-v`, as a bind mount, as a `local` volume
//! with a bind device, and as raw bodies (a lower-case `hostconfig`, merged
//! duplicate `HostConfig` objects, top-level `Binds` on dockerd 20.10);
//! `--pid container:X`; an old-API start with a HostConfig body; `docker cp`
//! into a running container; plugin create and pull. Finally, the pack records
//! only the routes it lists: `docker ps` leaves no record, a plain `docker
//! run` leaves its allowed create and start.
//!
//! Behaviour that depends on the daemon (old-API starts, top-level HostConfig
//! fields) is chosen by the version the daemon reports at `GET /version`.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{
    Container, Gate, IMAGE, TempDir, direct_docker, docker_sock, ok_stdout, read_response, records, unique,
    wait_record,
};
use serde_json::{Value, json};

/// How every lockdown refusal begins (the `message` of the 403 body).
const DENIED: &str = "execgate: request denied: ";

/// Capability bit of CAP_SYS_ADMIN.
const CAP_SYS_ADMIN: u32 = 21;

fn repo_path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// A gate with the default pack and the lockdown pack.
fn lockdown_gate() -> Gate {
    common::require_daemon();
    let default_pack = repo_path("policies/execgate.rego");
    let lockdown = repo_path("policies/examples/lockdown");
    Gate::start_with(Path::new(docker_sock()), &["--policy", &default_pack, "--policy", &lockdown])
}

/// A gate with the built-in default pack (no request policy).
fn default_gate() -> Gate {
    Gate::start()
}

// ---------------------------------------------------------------------------
// The daemon's own view

/// The daemon's version (`Version` of `GET /version`) as (major, minor).
fn daemon_version() -> (u32, u32) {
    let (status, _, body) = exchange(Path::new(docker_sock()), "GET", "/version", None, b"");
    assert_eq!(status, 200, "GET /version: {}", String::from_utf8_lossy(&body));
    let value: Value = serde_json::from_slice(&body).expect("version json");
    let version = value["Version"].as_str().expect("Version").to_owned();
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// dockerd before 26 applies a HostConfig sent with an old-API start.
fn applies_old_start_bodies() -> bool {
    daemon_version().0 < 26
}

/// dockerd before 27.1 reads HostConfig fields at the top level of a create body.
fn reads_top_level_host_config() -> bool {
    daemon_version() < (27, 1)
}

/// The daemon's process id, from the peer credentials of its socket: its
/// namespaces are what `host` means in `--pid host` and the like.
fn daemon_pid() -> i32 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    runtime.block_on(async {
        let stream = tokio::net::UnixStream::connect(docker_sock()).await.expect("connect to the daemon");
        stream.peer_cred().expect("peer credentials").pid().expect("daemon pid")
    })
}

/// The daemon's namespace `ns` (`pid:[4026531836]`).
fn daemon_namespace(ns: &str) -> String {
    let link = format!("/proc/{}/ns/{ns}", daemon_pid());
    std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("readlink {link}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The containers the daemon knows by exactly this name (running or not).
fn containers_named(name: &str) -> Vec<String> {
    let out = direct_docker()
        .args(["ps", "-a", "--filter", &format!("name={name}"), "--format", "{{.Names}}"])
        .output()
        .expect("docker ps");
    ok_stdout(&out).lines().filter(|l| l.trim() == name).map(str::to_owned).collect()
}

/// `docker inspect` of a container, straight from the daemon.
fn inspect(container: &str) -> Value {
    let out = direct_docker().args(["inspect", container]).output().expect("docker inspect");
    let list: Vec<Value> = serde_json::from_str(&ok_stdout(&out)).expect("inspect json");
    list.into_iter().next().expect("one container")
}

/// `docker create --name name [args]` straight on the daemon, removed on drop.
fn create_direct(name: &str, args: &[&str]) -> Container {
    common::require_daemon();
    ok_stdout(&direct_docker().args(["create", "--name", name]).args(args).output().expect("docker create"));
    Container { name: name.to_owned() }
}

/// A volume on the daemon, removed on drop.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = direct_docker().args(["volume", "rm", "-f", &self.0]).output();
    }
}

fn volume_exists(name: &str) -> bool {
    let out = direct_docker().args(["volume", "ls", "-q", "--filter", &format!("name={name}")]).output();
    ok_stdout(&out.expect("docker volume ls")).lines().any(|l| l.trim() == name)
}

/// A plugin on the daemon, removed on drop.
struct Plugin(String);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ =
            exchange(Path::new(docker_sock()), "DELETE", &format!("/plugins/{}?force=1", self.0), None, b"");
    }
}

fn plugin_exists(name: &str) -> bool {
    let (status, _, body) =
        exchange(Path::new(docker_sock()), "GET", &format!("/plugins/{name}/json"), None, b"");
    match status {
        200 => true,
        404 => false,
        other => panic!("GET /plugins/{name}/json: {other} {}", String::from_utf8_lossy(&body)),
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP

/// Sends one request on a new connection to `socket`; returns (status, head, body).
fn exchange(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let content_type = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\n{content_type}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let (head, body) = read_response(&mut stream);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, body)
}

/// `POST {path}` with a JSON body.
fn post_json(socket: &Path, path: &str, body: &str) -> (u16, String, Vec<u8>) {
    exchange(socket, "POST", path, Some("application/json"), body.as_bytes())
}

/// The `message` of a Docker-style JSON error, or the body as text.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Asserts execgate's refusal: 403 with `{"message":"execgate: request denied: …"}`
/// naming `reason`.
fn assert_denied(what: &str, (status, head, body): &(u16, String, Vec<u8>), reason: &str) {
    let text = message(body);
    assert_eq!(*status, 403, "{what}: expected execgate's 403, got {head}{text}");
    let value: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    let text = value["message"].as_str().unwrap_or_else(|| panic!("{what}: no message in {value}"));
    assert!(text.starts_with(DENIED) && text.contains(reason), "{what}: expected {reason:?} in {text:?}");
}

// ---------------------------------------------------------------------------
// The audit trail

/// The `request` records in the log of `gate`.
fn request_records(gate: &Gate) -> Vec<Value> {
    records(&gate.audit).into_iter().filter(|r| r["event"] == "request").collect()
}

fn reasons_contain(record: &Value, text: &str) -> bool {
    record["reasons"]
        .as_array()
        .is_some_and(|all| all.iter().any(|m| m.as_str().is_some_and(|m| m.contains(text))))
}

/// Waits for the `request` record with `decision` on `route` that `pred` picks.
fn request_record(
    gate: &Gate,
    decision: &str,
    route: &str,
    pred: impl Fn(&Value) -> bool,
    what: &str,
) -> Value {
    wait_record(
        &gate.audit,
        &format!("request {decision} record on {route} ({what})"),
        Duration::from_secs(10),
        |r| r["event"] == "request" && r["decision"] == decision && r["route"] == route && pred(r),
    )
}

/// Waits for the denial of the create of container `name`, for `reason`.
fn create_denial(gate: &Gate, name: &str, reason: &str) -> Value {
    let record = request_record(
        gate,
        "deny",
        "ContainerCreate",
        |r| r["query"]["name"] == json!([name]) && reasons_contain(r, reason),
        reason,
    );
    assert_eq!(record["method"], "POST", "{record}");
    assert!(record["body"]["HostConfig"].is_object(), "the record keeps the body judged: {record}");
    record
}

/// The default pack has no request policy: nothing it relayed was recorded as a request.
fn assert_no_request_records(gate: &Gate) {
    let found = request_records(gate);
    assert!(found.is_empty(), "the default pack wrote request records: {found:#?}");
}

// ---------------------------------------------------------------------------
// The CLI

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `docker run --rm --name name [flags] IMAGE cmd…` through `gate`.
fn run_through(gate: &Gate, name: &str, flags: &[&str], cmd: &[&str]) -> Output {
    gate.run(&[&["run", "--rm", "--name", name][..], flags, &[IMAGE], cmd].concat())
}

/// Under lockdown, `docker run [flags]` is refused for `reason`, no container
/// is created, and the denial is recorded. Returns the record.
fn assert_run_closed(gate: &Gate, flags: &[&str], reason: &str) -> Value {
    let name = unique("locked");
    let _cleanup = Container { name: name.clone() };
    let out = run_through(gate, &name, flags, &["true"]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains(&format!("Error response from daemon: {DENIED}"))
            && err.contains(reason),
        "docker run {flags:?} under lockdown: expected a refusal naming {reason:?}, got {:?}\n{err}",
        out.status
    );
    assert!(containers_named(&name).is_empty(), "docker run {flags:?}: the daemon created {name} anyway");
    create_denial(gate, &name, reason)
}

/// Under the default pack, `docker run [flags] IMAGE cmd…` works; returns its stdout.
fn run_open(gate: &Gate, flags: &[&str], cmd: &[&str]) -> String {
    let name = unique("open");
    let _cleanup = Container { name: name.clone() };
    let out = run_through(gate, &name, flags, cmd);
    assert!(
        out.status.success(),
        "docker run {flags:?} {cmd:?} under the default pack failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The effective capability set printed by `grep CapEff /proc/self/status`.
fn cap_eff(text: &str) -> u64 {
    let line =
        text.lines().find(|l| l.starts_with("CapEff:")).unwrap_or_else(|| panic!("no CapEff in {text:?}"));
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).expect("CapEff hex")
}

const PRINT_CAPS: &[&str] = &["grep", "CapEff", "/proc/self/status"];

/// A file on the host with unique content, to be read back through a bind of `/`.
struct HostMarker {
    _dir: TempDir,
    path: String,
    content: String,
}

impl HostMarker {
    fn new() -> Self {
        let dir = TempDir::new("marker");
        let path = dir.path().join("marker");
        let content = unique("host-marker");
        std::fs::write(&path, &content).expect("marker");
        HostMarker { path: path.to_str().expect("utf8").to_owned(), _dir: dir, content }
    }
}

// ---------------------------------------------------------------------------
// 1. --privileged

#[test]
fn privileged_is_closed_by_lockdown_and_open_by_default() {
    let lockdown = lockdown_gate();
    let record = assert_run_closed(&lockdown, &["--privileged"], "privileged containers are not allowed");
    assert_eq!(record["body"]["HostConfig"]["Privileged"], true, "{record}");

    // Under the default pack the create goes through and the daemon stores a
    // privileged container. (dockerd 20.10's runc cannot start one on a host
    // whose bounding set lacks a capability, as in the test bed's sandbox: it
    // tries to apply them all. Docker 28.5 starts it.)
    let default = default_gate();
    let name = unique("privileged");
    let _cleanup = Container { name: name.clone() };
    let out = default.run(&[&["run", "--name", &name, "--privileged", IMAGE][..], PRINT_CAPS].concat());
    assert_eq!(inspect(&name)["HostConfig"]["Privileged"], true, "the daemon's HostConfig: {}", stderr(&out));
    if out.status.success() {
        let caps = cap_eff(&String::from_utf8_lossy(&out.stdout));
        assert!(caps & (1 << CAP_SYS_ADMIN) != 0, "a privileged container has CAP_SYS_ADMIN: {caps:x}");
    } else {
        let err = stderr(&out);
        assert!(
            err.contains("unable to apply caps") && !err.contains("execgate"),
            "the only failure allowed is the runtime's, at start: {err}"
        );
    }
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 2. --cap-add, and CapAdd as a string with a Unicode long s

#[test]
fn cap_add_is_closed_in_every_spelling_the_daemon_accepts() {
    let lockdown = lockdown_gate();
    assert_run_closed(
        &lockdown,
        &["--cap-add", "SYS_ADMIN"],
        "added capabilities are not allowed (--cap-add CAP_SYS_ADMIN)",
    );

    // The same capability as the daemon also takes it: one string, `ſ` (U+017F)
    // for `s`, lower case, no CAP_ prefix (Go's Unicode ToUpper makes it SYS_ADMIN).
    let body = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["grep","CapEff","/proc/self/status"],"HostConfig":{{"CapAdd":"ſys_admin"}}}}"#
    );
    let name = unique("capfold");
    let _cleanup = Container { name: name.clone() };
    let create = format!("/v1.41/containers/create?name={name}");
    let answer = post_json(&lockdown.socket, &create, &body);
    assert_denied(
        "CapAdd \"ſys_admin\"",
        &answer,
        "added capabilities are not allowed (--cap-add CAP_SYS_ADMIN)",
    );
    assert!(containers_named(&name).is_empty(), "the daemon created {name} anyway");
    create_denial(&lockdown, &name, "CAP_SYS_ADMIN");

    let default = default_gate();
    let caps = cap_eff(&run_open(&default, &["--cap-add", "SYS_ADMIN"], PRINT_CAPS));
    assert!(caps & (1 << CAP_SYS_ADMIN) != 0, "--cap-add SYS_ADMIN grants CAP_SYS_ADMIN: {caps:x}");
    let plain = cap_eff(&run_open(&default, &[], PRINT_CAPS));
    assert!(plain & (1 << CAP_SYS_ADMIN) == 0, "a plain container lacks CAP_SYS_ADMIN: {plain:x}");
    // The raw body through the default pack: stored verbatim, and it grants CAP_SYS_ADMIN.
    let (status, head, answer) = post_json(&default.socket, &create, &body);
    assert_eq!(status, 201, "{head}{}", message(&answer));
    assert_eq!(inspect(&name)["HostConfig"]["CapAdd"], json!(["ſys_admin"]));
    let caps = cap_eff(&ok_stdout(&default.run(&["start", "-a", &name])));
    assert!(caps & (1 << CAP_SYS_ADMIN) != 0, "\"ſys_admin\" grants CAP_SYS_ADMIN: {caps:x}");
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 3. Host namespaces

#[test]
fn host_pid_ipc_net_and_userns_are_closed() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    for (flag, mode, field, ns) in [
        ("--pid", "pid", "PidMode", "pid"),
        ("--ipc", "ipc", "IpcMode", "ipc"),
        ("--net", "network", "NetworkMode", "net"),
        ("--userns", "user", "UsernsMode", "user"),
    ] {
        let reason = format!("sharing the host's {mode} namespace ({field}=host) is not allowed");
        let record = assert_run_closed(&lockdown, &[flag, "host"], &reason);
        assert_eq!(record["body"]["HostConfig"][field], "host", "{record}");

        // Under the default pack the container is in the daemon's namespace.
        let seen = run_open(&default, &[flag, "host"], &["readlink", &format!("/proc/self/ns/{ns}")]);
        assert_eq!(seen.trim(), daemon_namespace(ns), "{flag} host: the container's {ns} namespace");
    }
    // Without the flag a container has its own pid namespace (so the check above means something).
    let own = run_open(&default, &[], &["readlink", "/proc/self/ns/pid"]);
    assert_ne!(own.trim(), daemon_namespace("pid"));
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 4. Binds of the host's root, the Docker socket and the audit directory

#[test]
fn binds_of_root_the_socket_and_the_audit_dir_are_closed() {
    let marker = HostMarker::new();
    std::fs::create_dir_all("/var/log/execgate").expect("mkdir -p /var/log/execgate");
    let lockdown = lockdown_gate();
    let default = default_gate();
    let read_marker = |root: &str| vec!["cat".to_owned(), format!("{root}{}", marker.path)];

    let root = "binding the host's root (/) is not allowed";
    // (flags, reason under lockdown, command under the default pack, its expected stdout)
    let cases: Vec<(Vec<&str>, String, Vec<String>, String)> = vec![
        (vec!["-v", "/:/host"], root.to_owned(), read_marker("/host"), marker.content.clone()),
        (
            vec!["--mount", "type=bind,source=/,target=/h"],
            root.to_owned(),
            read_marker("/h"),
            marker.content.clone(),
        ),
        (
            vec!["-v", "/var/run/docker.sock:/s"],
            "binding /var/run/docker.sock is not allowed: it exposes /var/run/docker.sock".to_owned(),
            vec!["sh".into(), "-c".into(), "test -S /s && echo socket".into()],
            "socket\n".to_owned(),
        ),
        (
            vec!["-v", "/var/log/execgate:/a:ro"],
            "binding /var/log/execgate is not allowed: it exposes /var/log/execgate".to_owned(),
            vec!["sh".into(), "-c".into(), "test -d /a && echo dir".into()],
            "dir\n".to_owned(),
        ),
        (
            vec!["-v", "/var/run:/r:ro"],
            "binding /var/run is not allowed: it exposes /var/run/docker.sock".to_owned(),
            vec!["sh".into(), "-c".into(), "test -d /r && echo dir".into()],
            "dir\n".to_owned(),
        ),
    ];
    for (flags, reason, cmd, expected) in &cases {
        assert_run_closed(&lockdown, flags, reason);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(&run_open(&default, flags, &cmd), expected, "docker run {flags:?} under the default pack");
    }

    // The judging gate's own audit directory, wherever it is (`input.execgate.audit_dir`).
    let own = std::fs::canonicalize(&lockdown.audit).expect("audit dir");
    let bind = format!("{}:/a:ro", own.display());
    assert_run_closed(&lockdown, &["-v", &bind], &format!("it exposes {}", own.display()));
    let default_dir = std::fs::canonicalize(&default.audit).expect("audit dir");
    let bind = format!("{}:/a:ro", default_dir.display());
    assert_eq!(run_open(&default, &["-v", &bind], &["sh", "-c", "test -d /a && echo dir"]), "dir\n");

    // A `local` volume with a bind device is a bind of the host's root too.
    let volume_flags = |volume: &str| {
        format!(
            "type=volume,source={volume},target=/h,volume-driver=local,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/"
        )
    };
    let locked = Volume(unique("vol"));
    assert_run_closed(&lockdown, &["--mount", &volume_flags(&locked.0)], root);
    assert!(!volume_exists(&locked.0), "the daemon created volume {} anyway", locked.0);
    let open = Volume(unique("vol"));
    let cmd = read_marker("/h");
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    assert_eq!(run_open(&default, &["--mount", &volume_flags(&open.0)], &cmd), marker.content);
    assert_no_request_records(&default);
}

#[test]
fn create_bodies_are_judged_as_the_daemon_decodes_them() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    let mut bodies = vec![
        (
            "a lower-case hostconfig key",
            format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"hostconfig":{{"Binds":["/:/h"]}}}}"#),
        ),
        (
            "duplicate HostConfig objects, merged",
            format!(
                r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"Privileged":false}},"HostConfig":{{"Binds":["/:/h"]}}}}"#
            ),
        ),
    ];
    let top_level = format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"Binds":["/:/h"]}}"#);
    if reads_top_level_host_config() {
        bodies.push(("top-level Binds with no HostConfig (dockerd 20.10)", top_level.clone()));
    }
    for (what, body) in &bodies {
        let name = unique("body");
        let _cleanup = Container { name: name.clone() };
        let create = format!("/v1.41/containers/create?name={name}");
        assert_denied(
            what,
            &post_json(&lockdown.socket, &create, body),
            "binding the host's root (/) is not allowed",
        );
        assert!(containers_named(&name).is_empty(), "{what}: the daemon created {name} anyway");
        create_denial(&lockdown, &name, "binding the host's root (/)");

        // The default pack relays it, and the daemon applies the bind.
        let (status, head, answer) = post_json(&default.socket, &create, body);
        assert_eq!(status, 201, "{what}: {head}{}", message(&answer));
        assert_eq!(inspect(&name)["HostConfig"]["Binds"], json!(["/:/h"]), "{what}: the daemon's HostConfig");
    }
    if !reads_top_level_host_config() {
        // dockerd 27.1 and later ignore top-level HostConfig fields: whatever
        // lockdown decides, no container with a bind of / can come of it.
        for (gate, judged) in [(&lockdown, true), (&default, false)] {
            let name = unique("toplevel");
            let _cleanup = Container { name: name.clone() };
            let (status, head, answer) =
                post_json(&gate.socket, &format!("/v1.41/containers/create?name={name}"), &top_level);
            match status {
                201 => {
                    assert_eq!(inspect(&name)["HostConfig"]["Binds"], Value::Null, "top-level Binds applied?")
                }
                403 if judged => {
                    assert!(containers_named(&name).is_empty(), "denied, yet created")
                }
                _ => panic!("top-level Binds: {head}{}", message(&answer)),
            }
        }
    }
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 5. --pid container:X

#[test]
fn pid_container_is_closed() {
    let target = Container::run("pidtarget", &[]);
    let lockdown = lockdown_gate();
    let pid_mode = format!("container:{}", target.name);
    let record = assert_run_closed(
        &lockdown,
        &["--pid", &pid_mode],
        &format!("joining another container's pid namespace (--pid {pid_mode}) is not allowed"),
    );
    assert_eq!(record["body"]["HostConfig"]["PidMode"], pid_mode.as_str(), "{record}");

    // Under the default pack, PID 1 of the new container is the target's `sleep`.
    let default = default_gate();
    let comm = run_open(&default, &["--pid", &pid_mode], &["cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "sleep", "--pid {pid_mode}: PID 1 seen");
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 6. An old-API start with a HostConfig body

#[test]
fn old_api_start_with_a_host_config_is_closed() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    let body = r#"{"PidMode":"host"}"#;

    let locked = create_direct(&unique("oldstart"), &[IMAGE, "sleep", "3600"]);
    let start = format!("/v1.23/containers/{}/start", locked.name);
    assert_denied(
        "an old-API start with a body",
        &post_json(&lockdown.socket, &start, body),
        "with a HostConfig body (API 1.23) is not allowed",
    );
    let seen = inspect(&locked.name);
    assert_eq!(seen["State"]["Running"], false, "the denied start started it");
    assert_eq!(seen["HostConfig"]["PidMode"], "", "the denied start changed its HostConfig");
    let record = request_record(
        &lockdown,
        "deny",
        "ContainerStart",
        |r| r["params"]["name"] == locked.name.as_str(),
        "old start",
    );
    assert_eq!(record["api_version"], "1.23", "{record}");
    assert_eq!(record["container"]["name"], locked.name.as_str(), "{record}");

    let open = create_direct(&unique("oldstart"), &[IMAGE, "sleep", "3600"]);
    let start = format!("/v1.23/containers/{}/start", open.name);
    let (status, head, answer) = post_json(&default.socket, &start, body);
    let seen = inspect(&open.name);
    if applies_old_start_bodies() {
        // dockerd 20.10: the body replaces the container's HostConfig.
        assert_eq!(status, 204, "{head}{}", message(&answer));
        assert_eq!(seen["HostConfig"]["PidMode"], "host", "the old-API start applied its HostConfig");
        assert_eq!(seen["State"]["Running"], true);
    } else {
        // dockerd 26 and later refuse the API version themselves.
        let text = message(&answer);
        assert_eq!(status, 400, "{head}{text}");
        assert!(!text.contains("execgate") && text.contains("too old"), "the daemon's own refusal: {text}");
        assert_eq!(seen["HostConfig"]["PidMode"], "");
        assert_eq!(seen["State"]["Running"], false);
    }
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// 7. docker cp into a running container

#[test]
fn archive_put_into_a_running_container_is_closed() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    let dir = TempDir::new("cp");
    let file_name = format!("{}.txt", unique("copied"));
    let file = dir.path().join(&file_name);
    let payload = unique("payload");
    std::fs::write(&file, &payload).expect("file to copy");
    let file = file.to_str().expect("utf8");
    let exists_in = |container: &str| {
        direct_docker()
            .args(["exec", container, "test", "-e", &format!("/tmp/{file_name}")])
            .status()
            .expect("docker exec")
            .success()
    };

    let running = Container::run("cprunning", &[]);
    let out = lockdown.run(&["cp", file, &format!("{}:/tmp/", running.name)]);
    let err = stderr(&out);
    let reason =
        format!("writing files into running container {} (docker cp into it) is not allowed", running.name);
    assert!(
        !out.status.success() && err.contains(DENIED) && err.contains(&reason),
        "docker cp under lockdown: {err}"
    );
    assert!(!exists_in(&running.name), "the denied copy wrote the file");
    let record = request_record(
        &lockdown,
        "deny",
        "PutContainerArchive",
        |r| r["params"]["name"] == running.name.as_str(),
        "cp",
    );
    assert_eq!(record["container"]["running"], true, "{record}");
    assert_eq!(record["method"], "PUT", "{record}");

    // A stopped container may be written to under lockdown (and that decision is recorded).
    let stopped = create_direct(&unique("cpstopped"), &[IMAGE, "sleep", "3600"]);
    ok_stdout(&lockdown.run(&["cp", file, &format!("{}:/tmp/", stopped.name)]));
    let back = direct_docker()
        .args(["cp", &format!("{}:/tmp/{file_name}", stopped.name), "-"])
        .output()
        .expect("cp out");
    assert!(
        String::from_utf8_lossy(&ok_stdout_bytes(&back)).contains(&payload),
        "the file copied into the stopped container"
    );
    let record = request_record(
        &lockdown,
        "allow",
        "PutContainerArchive",
        |r| r["params"]["name"] == stopped.name.as_str(),
        "cp stopped",
    );
    assert_eq!(record["container"]["running"], false, "{record}");

    // The default pack lets the copy into the running container through.
    ok_stdout(&default.run(&["cp", file, &format!("{}:/tmp/", running.name)]));
    assert_eq!(running.as_root(&format!("cat /tmp/{file_name}")), payload);
    assert_no_request_records(&default);
}

fn ok_stdout_bytes(out: &Output) -> Vec<u8> {
    assert!(out.status.success(), "docker failed ({:?}): {}", out.status, stderr(out));
    out.stdout.clone()
}

// ---------------------------------------------------------------------------
// 8. Plugin installs

/// A plugin as `POST /plugins/create` takes it: `config.json` asking for the
/// host's pid namespace, a bind of `/` and CAP_SYS_ADMIN, and an empty `rootfs/`.
fn plugin_tar() -> Vec<u8> {
    let config = json!({
        "Description": "execgate lockdown test plugin",
        "Documentation": "https://example.invalid",
        "Entrypoint": ["/bin/true"],
        "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "eg.sock"},
        "Network": {"Type": "host"},
        "PidHost": true,
        "Mounts": [{"Source": "/", "Destination": "/host", "Type": "bind", "Options": ["rbind"]}],
        "Linux": {"Capabilities": ["CAP_SYS_ADMIN"]},
    })
    .to_string();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(config.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "config.json", config.as_bytes()).expect("config.json");
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    builder.append_data(&mut dir, "rootfs/", std::io::empty()).expect("rootfs/");
    builder.into_inner().expect("tar")
}

#[test]
fn plugin_installs_are_closed() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    let tar = plugin_tar();
    let plugin = Plugin(unique("plugin"));
    let create = format!("/plugins/create?name={}", plugin.0);

    let answer = exchange(&lockdown.socket, "POST", &create, Some("application/x-tar"), &tar);
    assert_denied("plugin create", &answer, "PluginCreate is not allowed");
    assert!(!plugin_exists(&plugin.0), "the denied create installed {}", plugin.0);
    request_record(
        &lockdown,
        "deny",
        "PluginCreate",
        |r| r["query"]["name"] == json!([plugin.0]),
        "plugin create",
    );

    let answer = post_json(&lockdown.socket, "/plugins/pull?remote=x", "[]");
    assert_denied("plugin pull", &answer, "PluginPull is not allowed");
    request_record(&lockdown, "deny", "PluginPull", |r| r["query"]["remote"] == json!(["x"]), "plugin pull");

    // The default pack: the daemon installs it (disabled, with those privileges).
    let (status, head, answer) = exchange(&default.socket, "POST", &create, Some("application/x-tar"), &tar);
    assert_eq!(status, 204, "plugin create under the default pack: {head}{}", message(&answer));
    assert!(plugin_exists(&plugin.0));
    let (status, head, answer) =
        exchange(&default.socket, "DELETE", &format!("/plugins/{}", plugin.0), None, b"");
    assert_eq!(status, 200, "plugin delete: {head}{}", message(&answer));
    assert!(!plugin_exists(&plugin.0));

    // A pull reaches the daemon, which fails on its own (no registry reachable).
    let (status, head, answer) = post_json(&default.socket, "/plugins/pull?remote=x", "[]");
    let text = message(&answer);
    assert!(
        status >= 400 && status != 403 && !text.contains("execgate"),
        "the daemon's own answer to a pull: {head}{text}"
    );
    assert_no_request_records(&default);
}

// ---------------------------------------------------------------------------
// What the pack records

#[test]
fn lockdown_records_the_routes_it_lists_and_nothing_else() {
    let lockdown = lockdown_gate();
    ok_stdout(&lockdown.run(&["ps", "-a"]));
    let after_ps = request_records(&lockdown);
    assert!(after_ps.is_empty(), "docker ps was recorded: {after_ps:#?}");

    // A plain run is allowed, and its create and start are recorded as allowed.
    let name = unique("plain");
    let _cleanup = Container { name: name.clone() };
    assert_eq!(ok_stdout(&run_through(&lockdown, &name, &[], &["echo", "plain"])), "plain\n");
    let create =
        request_record(&lockdown, "allow", "ContainerCreate", |r| r["query"]["name"] == json!([name]), "run");
    assert_eq!(create["body"]["HostConfig"]["Privileged"], false, "{create}");
    request_record(&lockdown, "allow", "ContainerStart", |r| r["container"]["name"] == name.as_str(), "run");

    // Every request record is on a route the pack lists.
    let listed = [
        "ContainerCreate",
        "ContainerStart",
        "PutContainerArchive",
        "PluginPull",
        "PluginUpgrade",
        "PluginCreate",
        "PluginSet",
    ];
    for record in request_records(&lockdown) {
        let route = record["route"].as_str().unwrap_or_default();
        assert!(listed.contains(&route), "a request on an unlisted route was recorded: {record}");
        assert_eq!(record["decision"], "allow", "{record}");
    }
}

#[test]
fn host_devices_and_unconfined_containers_are_closed() {
    let lockdown = lockdown_gate();
    let default = default_gate();
    // (flags, reason under lockdown, command under the default pack, its expected stdout)
    let cases: Vec<(Vec<&str>, &str, Vec<&str>, &str)> = vec![
        (
            vec!["--device", "/dev/zero:/dev/hostzero"],
            "host devices are not allowed (--device /dev/zero)",
            vec!["sh", "-c", "test -c /dev/hostzero && echo device"],
            "device\n",
        ),
        (
            vec!["--security-opt", "seccomp=unconfined"],
            "(--security-opt seccomp=unconfined)",
            vec!["sh", "-c", "grep -q '^Seccomp:.*0$' /proc/self/status && echo unconfined"],
            "unconfined\n",
        ),
        (
            vec!["--security-opt", "systempaths=unconfined"],
            "unmasking the kernel's paths is not allowed",
            // Masked, /proc/kcore is bound to /dev/null (a character device).
            vec!["sh", "-c", "test -c /proc/kcore || echo unmasked"],
            "unmasked\n",
        ),
    ];
    for (flags, reason, cmd, expected) in &cases {
        assert_run_closed(&lockdown, flags, reason);
        assert_eq!(run_open(&default, flags, cmd), *expected, "docker run {flags:?} under the default pack");
    }
    assert_no_request_records(&default);
}
