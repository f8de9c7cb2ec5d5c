//! bollard (the Rust Docker client) through execgate against the real daemon:
//! create_exec → start_exec (attached, stdin written and shut down, output
//! collected) → inspect_exec, resize_exec on a TTY exec, a detached start, and
//! the refusals. Each allowed scenario runs straight at the daemon first; the
//! answer through execgate must equal it. Part of the client matrix in
//! `tests/clients.rs`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::AttachContainerResults;
use bollard::container::LogOutput;
use bollard::errors::Error;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use common::{Container, Gate, IMAGE, direct_docker, docker_sock, ok_stdout, unique, verify_ok, wait_record};

const ROOT_REASON: &str = "execgate: exec denied: exec as root (user \"root\" resolves to uid 0)";
/// The same, judged at start for an exec created behind execgate's back.
const START_REASON: &str = "execgate: exec denied: exec as root (user \"0:0\" resolves to uid 0)";

/// A bollard client on `socket`, at the API version the daemon negotiates.
async fn connect(socket: &str) -> Docker {
    Docker::connect_with_unix(socket, 60, bollard::API_DEFAULT_VERSION)
        .expect("bollard client")
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("bollard: negotiate version at {socket}: {e}"))
}

async fn gate_client(gate: &Gate) -> Docker {
    connect(&gate.socket.display().to_string()).await
}

/// What an attached exec produced, stream by stream, and its exit code.
#[derive(Debug, PartialEq, Default)]
struct Session {
    stdout: String,
    stderr: String,
    console: String,
    exit_code: Option<i64>,
}

/// create_exec → start_exec (attached) → write `stdin` and shut the write half
/// down → collect the output to its end → inspect_exec. With `tty`, resizes the
/// exec to 33×111 before writing, and leaves stdin open.
async fn attached_session(docker: &Docker, container: &str, cmd: &str, tty: bool, stdin: &[u8]) -> Session {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                cmd: Some(vec!["sh", "-c", cmd]),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create_exec: {e}"));
    let started = docker
        .start_exec(&exec.id, Some(StartExecOptions { tty, ..Default::default() }))
        .await
        .unwrap_or_else(|e| panic!("start_exec: {e}"));
    let StartExecResults::Attached { mut output, mut input } = started else {
        panic!("start_exec without detach answered Detached");
    };
    if tty {
        docker
            .resize_exec(&exec.id, ResizeExecOptions { height: 33, width: 111 })
            .await
            .unwrap_or_else(|e| panic!("resize_exec: {e}"));
    }
    input.write_all(stdin).await.expect("write stdin");
    // On a TTY exec the daemon ends the whole session at stdin's EOF, output
    // or not: there the process ends it instead.
    if !tty {
        input.shutdown().await.expect("shut down stdin");
    }
    let mut session = Session::default();
    let collect = async {
        while let Some(item) = output.next().await {
            match item.unwrap_or_else(|e| panic!("exec output: {e}")) {
                LogOutput::StdOut { message } => session.stdout.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::StdErr { message } => session.stderr.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::Console { message } => {
                    session.console.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdIn { message } => panic!("stdin echoed back: {message:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("the exec's output did not end in 30 s");
    let inspect = docker.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspect_exec: {e}"));
    assert_eq!(inspect.running, Some(false), "{inspect:?}");
    session.exit_code = inspect.exit_code;
    session
}

/// The same session straight at the daemon and through execgate.
async fn both(gate: &Gate, container: &str, cmd: &str, tty: bool, stdin: &[u8]) -> Session {
    let direct = attached_session(&connect(docker_sock()).await, container, cmd, tty, stdin).await;
    let through = attached_session(&gate_client(gate).await, container, cmd, tty, stdin).await;
    assert_eq!(
        through,
        direct,
        "through execgate vs straight at the daemon; execgate log:\n{}",
        gate.log_text()
    );
    through
}

#[tokio::test]
async fn bollard_attached_exec_carries_stdin_to_eof_and_exit_code() {
    let gate = Gate::start();
    let c = Container::run("bollard", &[]);
    let got = both(&gate, &c.name, "wc -c; echo to-err >&2; exit 4", false, b"twelve bytes").await;
    assert_eq!(got.stdout, "12\n", "{got:?}");
    assert_eq!(got.stderr, "to-err\n", "{got:?}");
    assert_eq!(got.exit_code, Some(4));
}

#[tokio::test]
async fn bollard_resizes_a_tty_exec() {
    let gate = Gate::start();
    let c = Container::run("bollardtty", &[]);
    let got = both(&gate, &c.name, "read line; stty size; tty | cut -c1-9; exit 6", true, b"go\n").await;
    assert_eq!(got.console, "go\r\n33 111\r\n/dev/pts/\r\n", "{got:?}");
    assert_eq!(got.exit_code, Some(6));
}

#[tokio::test]
async fn bollard_detached_start_returns_while_the_process_runs() {
    let gate = Gate::start();
    let c = Container::run("bollarddetach", &[]);
    let docker = gate_client(&gate).await;
    let exec = docker
        .create_exec(
            &c.name,
            CreateExecOptions {
                cmd: Some(vec!["sh", "-c", "sleep 0.5; echo detached > /tmp/flag"]),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create_exec: {e}\n{}", gate.log_text()));
    let started = docker
        .start_exec(&exec.id, Some(StartExecOptions { detach: true, ..Default::default() }))
        .await
        .unwrap_or_else(|e| panic!("start_exec detached: {e}\n{}", gate.log_text()));
    assert!(matches!(started, StartExecResults::Detached), "{started:?}");
    let inspect = docker.inspect_exec(&exec.id).await.expect("inspect_exec");
    assert_eq!(inspect.running, Some(true), "returned before the process ended: {inspect:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let inspect = docker.inspect_exec(&exec.id).await.expect("inspect_exec");
        if inspect.running == Some(false) {
            assert_eq!(inspect.exit_code, Some(0), "{inspect:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the detached exec never ended: {inspect:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.as_root("cat /tmp/flag"), "detached\n");
}

/// A 403 with execgate's reason, as bollard reports it.
fn assert_refused(result: Result<impl std::fmt::Debug, Error>, reason: &str) {
    match result {
        Err(Error::DockerResponseServerError { status_code, message }) => {
            assert_eq!(status_code, 403, "{message}");
            assert!(message.contains(reason), "{message}");
        }
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn bollard_refusals_read_execgate_reason() {
    let gate = Gate::start();
    let c = Container::run("bollardrefuse", &[]);
    let docker = gate_client(&gate).await;
    let refused = docker
        .create_exec(
            &c.name,
            CreateExecOptions {
                user: Some("root"),
                attach_stdout: Some(true),
                cmd: Some(vec!["id", "-u"]),
                ..Default::default()
            },
        )
        .await;
    assert_refused(refused, ROOT_REASON);

    // Created behind execgate's back, started through it: refused at start.
    let id = common::create_exec_direct(
        &c.name,
        r#"{"AttachStdout":true,"AttachStderr":true,"User":"0:0","Cmd":["id","-u"]}"#,
    );
    assert_refused(docker.start_exec(&id, None).await.map(|_| ()), START_REASON);
}

// ---- attach and the request policy, through bollard ----

/// Whether the daemon has a container named exactly `name`.
fn exists(name: &str) -> bool {
    let out = direct_docker().args(["ps", "-a", "--filter", &format!("name=^{name}$"), "-q"]).output();
    !ok_stdout(&out.expect("docker ps")).trim().is_empty()
}

#[tokio::test]
async fn bollard_attach_is_judged_and_recorded() {
    common::require_daemon();
    let gate = Gate::start();
    let name = unique("bollard-attach");
    let _guard = Container { name: name.clone() };
    let create = direct_docker()
        .args(["create", "-i", "--name", &name, IMAGE, "sh", "-c", "read x; echo got:$x; exit 5"])
        .output();
    ok_stdout(&create.expect("docker create"));
    let docker = gate_client(&gate).await;
    let options = AttachContainerOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let AttachContainerResults { mut output, mut input } =
        docker.attach_container(&name, Some(options)).await.expect("bollard attach through execgate");
    docker.start_container(&name, None).await.expect("bollard start");
    input.write_all(b"hi\n").await.expect("stdin");
    input.flush().await.expect("flush");
    let mut out = Vec::new();
    while let Some(item) =
        tokio::time::timeout(Duration::from_secs(20), output.next()).await.expect("output in time")
    {
        out.extend_from_slice(&item.expect("attach output").into_bytes());
    }
    assert_eq!(String::from_utf8_lossy(&out), "got:hi\n");

    let start =
        wait_record(&gate.audit, "attach.start", Duration::from_secs(5), |r| r["event"] == "attach.start");
    assert_eq!(start["decision"], "allow", "{start}");
    assert_eq!(start["container"]["name"], name.as_str(), "{start}");
    assert_eq!(start["attach"]["stdin"], true, "{start}");
    let end = wait_record(&gate.audit, "attach.end", Duration::from_secs(10), |r| r["event"] == "attach.end");
    assert_eq!((&end["reason"], &end["exit_code"]), (&"exited".into(), &5.into()), "{end}");
    assert_eq!(end["bytes"]["stdin"], 3, "{end}");
    verify_ok(&gate.audit);
}

#[tokio::test]
async fn bollard_creates_are_judged_by_the_lockdown_pack_as_the_daemon_reads_them() {
    common::require_daemon();
    let lockdown = Gate::start_with(
        Path::new(docker_sock()),
        &["--policy", "policies/execgate.rego", "--policy", "policies/examples/lockdown"],
    );
    let default = Gate::start();
    let body = ContainerCreateBody {
        image: Some(IMAGE.to_owned()),
        cmd: Some(vec!["true".to_owned()]),
        host_config: Some(HostConfig {
            privileged: Some(true),
            binds: Some(vec!["/:/host".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let named =
        |name: &str| Some(CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() });

    let locked = unique("bollard-locked");
    let _guard = Container { name: locked.clone() };
    let refused = gate_client(&lockdown).await.create_container(named(&locked), body.clone()).await;
    match refused {
        Err(Error::DockerResponseServerError { status_code: 403, message }) => {
            assert!(message.starts_with("execgate: request denied: "), "{message}");
            for reason in
                ["privileged containers are not allowed", "binding the host's root (/) is not allowed"]
            {
                assert!(message.contains(reason), "{message}");
            }
        }
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
    assert!(!exists(&locked), "the daemon created {locked} anyway");
    let record = wait_record(&lockdown.audit, "request denial", Duration::from_secs(5), |r| {
        r["event"] == "request" && r["decision"] == "deny"
    });
    assert_eq!(record["route"], "ContainerCreate", "{record}");
    assert_eq!(record["body"]["HostConfig"]["bind_sources"], serde_json::json!(["/"]), "{record}");

    let open = unique("bollard-open");
    let _guard = Container { name: open.clone() };
    gate_client(&default)
        .await
        .create_container(named(&open), body)
        .await
        .expect("created under the default pack");
    let inspect = direct_docker()
        .args(["inspect", "--format", "{{.HostConfig.Privileged}} {{json .HostConfig.Binds}}", &open])
        .output();
    assert_eq!(ok_stdout(&inspect.expect("docker inspect")).trim(), r#"true ["/:/host"]"#);
}
