//! The exec gate against the real daemon: the default policy through the docker
//! CLI, and a raw-HTTP bypass battery where every case is checked against the
//! daemon's own view (`GET /exec/{id}/json`, the container's exec list).

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{
    Container, Gate, create_exec_direct, direct_docker, docker_sock, ok_stdout, read_response, start_request,
};

/// Sends one request on a new connection to `socket`; returns (head, body).
fn request(socket: &std::path::Path, raw: &[u8]) -> (String, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(raw).expect("write");
    read_response(&mut stream)
}

fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(head: &str) -> u16 {
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status code")
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// The daemon's own list of execs in a container.
fn exec_ids(container: &str) -> Vec<String> {
    let out = ok_stdout(
        &direct_docker().args(["inspect", "-f", "{{json .ExecIDs}}", container]).output().expect("inspect"),
    );
    serde_json::from_str::<Option<Vec<String>>>(out.trim()).expect("exec ids").unwrap_or_default()
}

/// The daemon's own view of an exec.
fn inspect_exec(id: &str) -> serde_json::Value {
    let (head, body) = request(
        std::path::Path::new(docker_sock()),
        format!("GET /exec/{id}/json HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes(),
    );
    assert_eq!(status(&head), 200, "{head}");
    serde_json::from_slice(&body).expect("json")
}

fn created_id(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).expect("json")["Id"].as_str().expect("Id").to_owned()
}

// ---- the docker CLI under the default policy ----

#[test]
fn cli_root_exec_is_denied_with_a_readable_reason() {
    let gate = Gate::start();
    let c = Container::run("rootdefault", &["--user", "root"]);
    let out = gate.run(&["exec", &c.name, "id", "-u"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error response from daemon: execgate: exec denied: exec as root (user \"root\" resolves to uid 0)"),
        "{err}"
    );
    assert!(err.contains("pass a non-root user"), "{err}");
    assert!(exec_ids(&c.name).is_empty(), "a denied create must not reach the daemon");
    // The same container with a non-root user is fine.
    assert_eq!(ok_stdout(&gate.run(&["exec", "-u", "app", &c.name, "id", "-u"])), "1000\n");
}

#[test]
fn cli_non_root_default_is_allowed_and_privileged_is_denied() {
    let gate = Gate::start();
    let c = Container::run("nonroot", &[]);
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.name, "id", "-u"])), "1000\n");
    let out = gate.run(&["exec", "--privileged", &c.name, "id"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("privileged exec is not allowed: run it without --privileged"),
        "{err}"
    );
}

#[test]
fn cli_spellings_and_aliases_of_uid_0_are_denied() {
    let gate = Gate::start();
    let c = Container::run("spellings", &[]);
    // A passwd alias of uid 0, added behind execgate's back.
    c.as_root("echo 'toor:x:0:0::/root:/bin/sh' >> /etc/passwd");
    for spec in ["0", "00", "000", "+0", "-0", "root", "0:0", "root:app", "toor"] {
        let out = gate.run(&["exec", "-u", spec, &c.name, "id", "-u"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("resolves to uid 0"), "-u {spec}: {err}");
    }
    assert!(exec_ids(&c.name).len() <= 1, "only the setup exec may exist: {:?}", exec_ids(&c.name));
    // Out-of-range ids are refused as the runtime refuses them.
    let out = gate.run(&["exec", "-u", "4294967296", &c.name, "id", "-u"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("outside the runtime's id range"), "{err}");
}

#[test]
fn cli_exec_into_a_privileged_container_is_denied() {
    let gate = Gate::start();
    let c = Container::run("privctr", &["--privileged"]);
    let out = gate.run(&["exec", &c.name, "id"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("runs privileged and an exec inherits that"), "{err}");
}

#[test]
fn unresolvable_users_and_missing_containers_fail_closed() {
    let gate = Gate::start();
    let c = Container::run("ghost", &[]);
    let out = gate.run(&["exec", "-u", "ghost", &c.name, "id"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no user \"ghost\""), "{err}");
    // The CLI looks the container up itself first; a raw create meets execgate's lookup.
    let (head, answer) =
        request(&gate.socket, &post_json("/containers/no-such-container-execgate/exec", r#"{"Cmd":["id"]}"#));
    assert_eq!(status(&head), 404, "{head}");
    let text = message(&answer);
    assert!(
        text.starts_with("execgate: cannot look up container") && text.contains("No such container"),
        "{text}"
    );
}

// ---- raw-HTTP bypass battery ----

/// Bodies that must be judged as root or privileged, whatever their spelling.
const DENIED_BODIES: &[&str] = &[
    r#"{"Cmd":["id"],"user":"root"}"#,
    r#"{"Cmd":["id"],"USER":"0"}"#,
    r#"{"Cmd":["id"],"User":"app","User":"root"}"#,
    r#"{"Cmd":["id"],"\u0055ser":"root"}"#,
    r#"{"Cmd":["id"],"Uſer":"root"}"#,
    r#"{"Cmd":["id"],"User":"root","user":null}"#,
    r#"{"Cmd":["id"],"privileged":true}"#,
    r#"{"Cmd":["id"],"PRIVILEGED":true}"#,
    r#"{"Cmd":["id"],"Privileged":true,"Privileged":null}"#,
    r#"{"Cmd":["id"],"Privileged":false,"pRiViLeGeD":true}"#,
    r#"{"Cmd":["id"],"\u0050rivileged":true}"#,
    r#"{"Cmd":["id"],"User":"00"}"#,
    r#"{"Cmd":["id"],"User":"+0:app"}"#,
];

#[test]
fn bypass_bodies_are_denied_and_never_reach_the_daemon() {
    let gate = Gate::start();
    let c = Container::run("bodies", &[]);
    for body in DENIED_BODIES {
        let (head, answer) =
            request(&gate.socket, &post_json(&format!("/v1.41/containers/{}/exec", c.name), body));
        assert_eq!(status(&head), 403, "{body}: {head}{}", message(&answer));
        assert!(message(&answer).starts_with("execgate: exec denied: "), "{body}");
    }
    assert!(exec_ids(&c.name).is_empty(), "{:?}", exec_ids(&c.name));
}

#[test]
fn malformed_bodies_are_refused() {
    let gate = Gate::start();
    let c = Container::run("malformed", &[]);
    for (body, expect) in [
        (r#"{"Cmd":"id"}"#, "malformed exec create body"),
        (r#"{"Cmd":["id"],"Unknown":tru}"#, "malformed exec create body"),
        (r#"{"Cmd":["id"],"Privileged":"true"}"#, "malformed exec create body"),
        (r#"{"Cmd":["id"]"#, "malformed exec create body"),
        (r#"{"Cmd":["id"]} {"Privileged":true}"#, "malformed exec create body"),
        ("", "malformed exec create body"),
    ] {
        let (head, answer) = request(&gate.socket, &post_json(&format!("/containers/{}/exec", c.name), body));
        assert_eq!(status(&head), 400, "{body}: {head}");
        assert!(message(&answer).contains(expect), "{body}: {}", message(&answer));
    }
    assert!(exec_ids(&c.name).is_empty());
}

// Regression: docker-py sends "Container" in the create body, which the daemon
// ignores (Go's decoder skips unknown keys); execgate refused it with 400.
#[test]
fn unknown_keys_are_ignored_like_the_daemon_listed_and_not_forwarded() {
    let gate = Gate::start();
    let c = Container::run("unknownkeys", &[]);
    let body = r#"{"Container":"elsewhere","Cmd":["id"],"Privileged ":true,"Odd":{"User":"root"}}"#;
    let (head, answer) = request(&gate.socket, &post_json(&format!("/containers/{}/exec", c.name), body));
    assert_eq!(status(&head), 201, "{head}{}", message(&answer));
    let pc = &inspect_exec(&created_id(&answer))["ProcessConfig"];
    assert_eq!(pc["privileged"], false);
    assert_eq!(pc["user"], "1000:1000");
    let log = std::fs::read_dir(&gate.audit)
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit-")))
        .map(|p| std::fs::read_to_string(p).expect("log"))
        .collect::<String>();
    let create = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|r| r["event"] == "exec.create")
        .expect("exec.create record");
    assert_eq!(create["ignored_fields"], serde_json::json!(["Container", "Privileged ", "Odd"]), "{create}");
}

// Regression: the daemon's exec inspect omits `user` when neither the exec nor
// the container names one (`omitempty`); execgate refused every such start
// with `missing field "user"` (the CLI showed only "received 403").
#[test]
fn a_start_whose_inspect_omits_the_user_runs() {
    let dir = common::TempDir::new("permissive");
    let policy = dir.path().join("allow.rego");
    std::fs::write(&policy, "package execgate\nimport rego.v1\ndeny := set()\n").expect("policy");
    let gate = Gate::start_with(
        std::path::Path::new(common::docker_sock()),
        &["--policy", policy.to_str().expect("path"), "--pin-user", "off"],
    );
    let c = Container::run("nouser", &["--user", ""]);
    let out = gate.run(&["exec", &c.name, "id", "-u"]);
    assert_eq!(common::ok_stdout(&out), "0\n");
}

#[test]
fn every_path_spelling_of_exec_create_is_judged() {
    let gate = Gate::start();
    let c = Container::run("paths", &[]);
    let name = &c.name;
    let body = r#"{"Cmd":["id"],"User":"root"}"#;
    for path in [
        format!("/containers/{name}/exec"),
        format!("/v1.41/containers/{name}/exec"),
        format!("/v1.041/containers/{name}/exec"),
        format!("/v01.41/containers/{name}/exec"),
        format!("/v1.41.0/containers/{name}/exec"),
        format!("/v1.24/containers/{name}/exec"),
        format!("/containers/{name}/%65xec"),
        format!("/containers/{name}/%65%78%65%63"),
        format!("/%76%31.41/containers/{name}/exec"),
        format!("/v1.41/%63ontainers/{name}/exec"),
    ] {
        let (head, answer) = request(&gate.socket, &post_json(&path, body));
        assert_eq!(status(&head), 403, "{path}: {head}{}", message(&answer));
    }
    assert!(exec_ids(name).is_empty());
}

#[test]
fn chunked_bodies_are_judged_and_conflicting_framing_refused() {
    let gate = Gate::start();
    let c = Container::run("chunked", &[]);
    let chunked = |body: &str| {
        let (a, b) = body.split_at(body.len() / 2);
        format!(
            "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            c.name,
            a.len(),
            b.len()
        )
    };
    let (head, _) = request(&gate.socket, chunked(r#"{"Cmd":["id"],"User":"root"}"#).as_bytes());
    assert_eq!(status(&head), 403, "{head}");
    let (head, body) = request(&gate.socket, chunked(r#"{"Cmd":["id"],"User":"app"}"#).as_bytes());
    assert_eq!(status(&head), 201, "{head}");
    assert_eq!(inspect_exec(&created_id(&body))["ProcessConfig"]["user"], "1000:1000", "app, pinned");

    // Content-Length beside chunked: the chunked body is what is read (as Go's
    // server reads it), judged, and the connection closes so nothing can be
    // smuggled behind it.
    let root = r#"{"Cmd":["id"],"User":"root"}"#;
    let conflict = format!(
        "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{root}\r\n0\r\n\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        c.name,
        root.len()
    );
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(conflict.as_bytes()).expect("write");
    let (head, _) = read_response(&mut stream);
    assert_eq!(status(&head), 403, "{head}");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut rest).expect("read");
    assert!(
        rest.is_empty(),
        "a request was read behind a conflicting frame: {}",
        String::from_utf8_lossy(&rest)
    );

    let gzip = format!(
        "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
        c.name
    );
    let (head, answer) = request(&gate.socket, gzip.as_bytes());
    assert_eq!(status(&head), 400, "{head}");
    assert!(message(&answer).contains("only `chunked`"), "{}", message(&answer));
    assert_eq!(exec_ids(&c.name).len(), 1);
}

#[test]
fn pipelined_requests_are_each_judged() {
    let gate = Gate::start();
    let c = Container::run("pipeline", &[]);
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut all = post_json(&format!("/v1.41/containers/{}/exec", c.name), r#"{"Cmd":["id"],"User":"app"}"#);
    all.extend(post_json(&format!("/v1.41/containers/{}/exec", c.name), r#"{"Cmd":["id"],"User":"root"}"#));
    stream.write_all(&all).expect("write");
    let (first, body) = read_response(&mut stream);
    assert_eq!(status(&first), 201, "{first}");
    let (second, _) = read_response(&mut stream);
    assert_eq!(status(&second), 403, "{second}");
    assert_eq!(exec_ids(&c.name), vec![created_id(&body)]);
}

#[test]
fn the_daemon_stores_exactly_what_was_judged() {
    let gate = Gate::start();
    let c = Container::run("canonical", &[]);
    // Spelled to confuse: folded, escaped, duplicated and null keys.
    let body = r#"{"cmd":["true"],"CMD":["sh","-c","echo x"],"Uſer":"root","\u0075ser":"app","tTy":true,"tty":null,"Env":["A=1"],"ENV":["B=2","C=3"]}"#;
    let (head, answer) = request(&gate.socket, &post_json(&format!("/containers/{}/exec", c.name), body));
    assert_eq!(status(&head), 201, "{head}{}", message(&answer));
    let id = created_id(&answer);
    let pc = &inspect_exec(&id)["ProcessConfig"];
    assert_eq!(pc["user"], "1000:1000", "app, pinned to what was judged");
    assert_eq!(pc["tty"], true);
    assert_eq!(pc["entrypoint"], "sh");
    assert_eq!(pc["arguments"], serde_json::json!(["-c", "echo x"]));
    assert_eq!(pc["privileged"], false);
}

/// Starts `id` through `socket` and expects it to run and print `expect`.
fn starts_and_prints(socket: &std::path::Path, id: &str, expect: &str) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.write_all(&start_request("/v1.41", id, "{}", true)).expect("write");
    let got = common::read_until(&mut stream, expect.as_bytes());
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got));
}

#[test]
fn execs_created_behind_execgates_back_are_judged_at_start() {
    let c = Container::run("behind", &[]);
    let start = |id: &str| start_request("/v1.41", id, "{}", true);
    // Numeric uid:gid (and nothing else) is pinned by its form: judged on it.
    let gate = Gate::start();
    let root = create_exec_direct(&c.name, r#"{"AttachStdout":true,"User":"0:0","Cmd":["id","-u"]}"#);
    let (head, answer) = request(&gate.socket, &start(&root));
    assert_eq!(status(&head), 403, "{head}");
    assert!(message(&answer).contains("resolves to uid 0"), "{}", message(&answer));
    assert_eq!(inspect_exec(&root)["Pid"], 0, "the denied exec must never have run");
    let app = create_exec_direct(&c.name, r#"{"AttachStdout":true,"User":"1000:1000","Cmd":["id","-u"]}"#);
    starts_and_prints(&gate.socket, &app, "1000\n");

    // A name cannot be pinned after the fact: refused by default, whatever it resolves to.
    for user in ["app", "root"] {
        let named = create_exec_direct(
            &c.name,
            &format!(r#"{{"AttachStdout":true,"User":"{user}","Cmd":["id","-u"]}}"#),
        );
        let (head, answer) = request(&gate.socket, &start(&named));
        assert_eq!(status(&head), 403, "{head}");
        assert!(message(&answer).contains("was not created through execgate"), "{}", message(&answer));
        assert_eq!(inspect_exec(&named)["Pid"], 0);
    }

    // `--unpinned-starts judge` hands them to policy instead.
    let judging =
        Gate::start_with(std::path::Path::new(common::docker_sock()), &["--unpinned-starts", "judge"]);
    let root = create_exec_direct(&c.name, r#"{"AttachStdout":true,"User":"root","Cmd":["id","-u"]}"#);
    let (head, answer) = request(&judging.socket, &start(&root));
    assert_eq!(status(&head), 403, "{head}");
    assert!(message(&answer).contains("resolves to uid 0"), "{}", message(&answer));
    let app = create_exec_direct(&c.name, r#"{"AttachStdout":true,"User":"app","Cmd":["id","-u"]}"#);
    starts_and_prints(&judging.socket, &app, "1000\n");
}

// Regression (the swap race): `app` remapped to uid 0 between execgate's
// judgement and the daemon's lookup ran as root. Pinned, it runs as judged.
/// Creates `id -u` as `app` through `gate`, then, behind execgate's back,
/// makes `app` uid 0 in the container's passwd; returns the exec id.
fn create_then_remap_app_to_root(gate: &Gate, c: &Container) -> String {
    let (head, answer) = request(
        &gate.socket,
        &post_json(
            &format!("/v1.41/containers/{}/exec", c.name),
            r#"{"AttachStdout":true,"User":"app","Cmd":["id","-u"]}"#,
        ),
    );
    assert_eq!(status(&head), 201, "{head}");
    let id = created_id(&answer);
    c.as_root("sed -i 's/^app:x:1000:1000/app:x:0:0/' /etc/passwd");
    id
}

#[test]
fn a_user_remapped_between_create_and_start_runs_as_judged() {
    let gate = Gate::start();
    let c = Container::run("remap", &[]);
    let id = create_then_remap_app_to_root(&gate, &c);
    starts_and_prints(&gate.socket, &id, "1000\n");
    assert_eq!(inspect_exec(&id)["ProcessConfig"]["user"], "1000:1000");
}

#[test]
fn unpinned_a_user_remapped_between_create_and_start_is_judged_again() {
    let gate = Gate::start_with(std::path::Path::new(common::docker_sock()), &["--pin-user", "off"]);
    let c = Container::run("remap", &[]);
    // Unpinned, the daemon resolves the name at start, so execgate must too.
    let id = create_then_remap_app_to_root(&gate, &c);
    let start = start_request("/v1.41", &id, "{}", true);
    let (head, answer) = request(&gate.socket, &start);
    assert_eq!(status(&head), 403, "{head}");
    assert!(message(&answer).contains("\"app\" resolves to uid 0"), "{}", message(&answer));
    assert_eq!(inspect_exec(&id)["Pid"], 0);
}

#[test]
fn a_container_renamed_between_create_and_start_keeps_its_judged_exec() {
    let gate = Gate::start();
    let original = Container::run("renamed", &[]);
    let (head, answer) = request(
        &gate.socket,
        &post_json(
            &format!("/v1.41/containers/{}/exec", original.name),
            r#"{"AttachStdout":true,"Cmd":["hostname"]}"#,
        ),
    );
    assert_eq!(status(&head), 201, "{head}");
    let id = created_id(&answer);
    let hostname = ok_stdout(
        &direct_docker()
            .args(["inspect", "-f", "{{.Config.Hostname}}", &original.name])
            .output()
            .expect("inspect"),
    );
    // Move the name to a privileged impostor.
    let moved = format!("{}-moved", original.name);
    ok_stdout(&direct_docker().args(["rename", &original.name, &moved]).output().expect("rename"));
    let _moved_guard = Container { name: moved };
    let _impostor = Container::run_named(&original.name, &["--privileged"]);
    let start = start_request("/v1.41", &id, "{}", true);
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(&start).expect("write");
    let got = common::read_until(&mut stream, hostname.trim().as_bytes());
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101") && text.contains(hostname.trim()), "{text}");
}

#[test]
fn a_judged_exec_starts_detached_without_upgrade() {
    // The start is checked against the record kept at create and judged again.
    let gate = Gate::start();
    let c = Container::run("startcheck", &[]);
    let (head, answer) = request(
        &gate.socket,
        &post_json(&format!("/containers/{}/exec", c.name), r#"{"AttachStdout":true,"Cmd":["true"]}"#),
    );
    assert_eq!(status(&head), 201);
    let id = created_id(&answer);
    let detached = start_request("", &id, r#"{"Detach":true}"#, false);
    let (head, _) = request(&gate.socket, &detached);
    assert_eq!(status(&head), 200, "{head}");
}

// ---- where users are resolved from ----

#[test]
fn a_bind_mounted_passwd_is_not_what_the_daemon_reads() {
    let dir = common::TempDir::new("bindpasswd");
    let passwd = dir.path().join("passwd");
    // Inside the container this file says app is uid 0, but the daemon resolves
    // users from the root filesystem without mounts: app stays 1000.
    std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\napp:x:0:0::/:/bin/sh\n").expect("passwd");
    let mount = format!("{}:/etc/passwd:ro", passwd.display());
    let c = Container::run("bindpasswd", &["-v", &mount]);

    let gate = Gate::start();
    assert_eq!(ok_stdout(&gate.run(&["exec", "-u", "app", &c.name, "id", "-u"])), "1000\n");

    // The archive API sees the mount, so it cannot be trusted for this file.
    let archive = Gate::start_with(std::path::Path::new(docker_sock()), &["--user-lookup", "archive"]);
    let out = archive.run(&["exec", "-u", "app", &c.name, "id", "-u"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the mount at /etc/passwd covers it"), "{err}");
}

#[test]
fn the_archive_lookup_resolves_like_the_rootfs() {
    let gate = Gate::start_with(std::path::Path::new(docker_sock()), &["--user-lookup", "archive"]);
    let c = Container::run("archive", &[]);
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.name, "id", "-u"])), "1000\n");
    // passwd behind a symlink, with a uid-0 alias: followed inside the container.
    c.as_root("mkdir -p /srv && cp /etc/passwd /srv/passwd && echo 'toor:x:0:0::/:/bin/sh' >> /srv/passwd && ln -sf ../srv/passwd /etc/passwd");
    let out = gate.run(&["exec", "-u", "toor", &c.name, "id", "-u"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("\"toor\" resolves to uid 0"), "{err}");
    assert_eq!(ok_stdout(&gate.run(&["exec", "-u", "app", &c.name, "id", "-u"])), "1000\n");
    // The rootfs reader agrees.
    let rootfs = Gate::start_with(std::path::Path::new(docker_sock()), &["--user-lookup", "rootfs"]);
    let out = rootfs.run(&["exec", "-u", "toor", &c.name, "id", "-u"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("\"toor\" resolves to uid 0")
    );
}
