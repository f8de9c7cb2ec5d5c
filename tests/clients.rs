//! The client matrix: real Docker clients other than the plain CLI, each driven
//! through execgate against the real daemon — compose v2, BuildKit (buildx),
//! docker-py, dockerode and the Go SDK — plus what the CLI tests in
//! `tests/cli.rs` leave out (the refusal a user reads, TTY resize, detach keys).
//! bollard lives in `tests/clients_bollard.rs`.
//!
//! Each client is checked for output, exit code, stdin EOF, TTY and resize,
//! and detach, and for the refusal it shows for an exec as root under the
//! default policy. Where a scenario can run straight at the daemon, its answer
//! there is the ground truth the answer through execgate must equal.
//!
//! The client programs live in `tests/clients/` (one small program per client,
//! a mode argument per scenario, JSON out). `scripts/testbed.sh` installs them:
//! PyPI `docker`, `npm ci` in `tests/clients/node`, the compose and buildx CLI
//! plugins, and `tests/clients/build.sh` for the Go SDK program. A missing
//! client is a failure, never a skip.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Container, Gate, IMAGE, TempDir, direct_docker, docker_sock, ok_stdout, unique};
use serde_json::Value;

/// The daemon straight, as a `DOCKER_HOST`.
fn direct_host() -> String {
    format!("unix://{}", docker_sock())
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A shell script for a TTY exec that waits (up to 5 s) for the terminal size
/// the client sets after start, then prints it: `size=ROWS COLS`.
/// (busybox `stty size` exits 0 even when it cannot tell.)
const PRINT_SIZE: &str = "i=0; until s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] || [ $i -ge 50 ]; \
                          do i=$((i+1)); sleep 0.1; done; echo size=$s";

/// Runs `command` to completion within `limit`, killing it past that.
fn output_within(mut command: Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// The last lines of the gate's log, for failure messages.
fn log_tail(gate: &Gate) -> String {
    let log = gate.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// Polls `check` for up to 5 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within 5 s");
}

/// `cat FILE` in the container, straight on the daemon.
fn file_in(container: &str, path: &str) -> String {
    let out = direct_docker().args(["exec", container, "cat", path]).output().expect("docker exec cat");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A flag file a detached exec writes, checked to appear after the client returned.
fn assert_detached_flag(container: &str, path: &str) {
    eventually(&format!("the detached exec writing {path}"), || file_in(container, path) == "detached\n");
}

/// Creates an exec as root straight on the daemon: starting it through execgate
/// is refused at start. Numeric `uid:gid`, so execgate judges it rather than
/// refusing a start whose user name the daemon would look up again.
fn root_exec_behind_the_gate(container: &str) -> String {
    common::create_exec_direct(
        container,
        r#"{"AttachStdout":true,"AttachStderr":true,"User":"0:0","Cmd":["id","-u"]}"#,
    )
}

// ---- client programs ----

/// One of the client programs in `tests/clients/`.
struct Client {
    name: &'static str,
    program: Vec<String>,
}

impl Client {
    /// docker-py: `python3 tests/clients/python/client.py`.
    fn python() -> Self {
        let probe = Command::new("python3")
            .args(["-c", "import docker; print(docker.__version__)"])
            .output()
            .unwrap_or_else(|e| panic!("python3 is missing ({e}); run `sudo scripts/testbed.sh`"));
        assert!(
            probe.status.success(),
            "PyPI `docker` is not importable by python3; run `sudo scripts/testbed.sh` (never skipped): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let script = clients_dir().join("python/client.py");
        Client { name: "docker-py", program: vec!["python3".into(), script.display().to_string()] }
    }

    /// dockerode: `node tests/clients/node/client.js`, after `npm ci` there.
    fn node() -> Self {
        let dir = clients_dir().join("node");
        assert!(
            dir.join("node_modules/dockerode/package.json").is_file(),
            "dockerode is not installed in {}; run `sudo scripts/testbed.sh` (it runs `npm ci` there; never skipped)",
            dir.display()
        );
        let probe = Command::new("node").arg("--version").output();
        assert!(probe.is_ok_and(|o| o.status.success()), "node is missing; run `sudo scripts/testbed.sh`");
        Client {
            name: "dockerode",
            program: vec!["node".into(), dir.join("client.js").display().to_string()],
        }
    }

    /// The Go SDK program, built (offline, idempotent) by `tests/clients/build.sh`.
    fn go() -> Self {
        let mut build = Command::new(clients_dir().join("build.sh"));
        build.env("EXECGATE_CLIENTS_BIN", go_bin_dir());
        let out = output_within(build, None, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "tests/clients/build.sh failed (it needs golang-go and golang-github-docker-docker-dev; \
             run `sudo scripts/testbed.sh`; never skipped):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = go_bin_dir().join("execgate-go-client");
        assert!(bin.is_file(), "build.sh made no {}", bin.display());
        Client { name: "Go SDK", program: vec![bin.display().to_string()] }
    }

    /// Runs one scenario against `host`; returns its JSON, failing on any error.
    fn run_at(&self, host: &str, args: &[&str]) -> Result<Value, String> {
        let mut command = Command::new(&self.program[0]);
        command.args(&self.program[1..]).args(args).env("DOCKER_HOST", host);
        let out = output_within(command, None, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value: Option<Value> = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok());
        match value {
            Some(mut v) if out.status.success() && v.get("error").is_none() => {
                if let Some(map) = v.as_object_mut() {
                    map.remove("seconds");
                }
                Ok(v)
            }
            _ => Err(format!(
                "{} {args:?} at {host} failed ({:?}):\nstdout: {stdout}\nstderr: {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// The scenario through execgate.
    fn through(&self, gate: &Gate, args: &[&str]) -> Value {
        self.run_at(&gate.host(), args).unwrap_or_else(|e| panic!("{e}\nexecgate log:\n{}", log_tail(gate)))
    }

    /// The scenario straight at the daemon (ground truth).
    fn direct(&self, args: &[&str]) -> Value {
        self.run_at(&direct_host(), args).unwrap_or_else(|e| panic!("straight at the daemon: {e}"))
    }

    /// The scenario through execgate, which must answer exactly as the daemon
    /// does straight (run first, as ground truth).
    fn same_as_direct(&self, gate: &Gate, args: &[&str]) -> Value {
        let direct = self.direct(args);
        let through = self.through(gate, args);
        assert_eq!(through, direct, "{} {args:?}: through execgate vs straight at the daemon", self.name);
        through
    }
}

fn go_bin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients")
}

/// A string field of a client's JSON answer.
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

const ROOT_REASON: &str = "execgate: exec denied: exec as root (user \"root\" resolves to uid 0)";
/// The same, judged at start for an exec created behind execgate's back.
const START_REASON: &str = "execgate: exec denied: exec as root (user \"0:0\" resolves to uid 0)";

// ---- the docker CLI: what tests/cli.rs leaves out ----

#[test]
fn cli_exec_as_root_shows_the_reason() {
    let gate = Gate::start();
    let c = Container::run("cliroot", &[]);
    let out = gate.run(&["exec", "-u", "root", &c.name, "id", "-u"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("Error response from daemon: {ROOT_REASON}")), "{err}");
    assert!(err.contains("pass a non-root user"), "{err}");
    assert!(out.stdout.is_empty(), "the refused exec printed {:?}", String::from_utf8_lossy(&out.stdout));
}

/// Runs `command` under a pseudo-terminal (`script`) set to 33 rows and 111
/// columns, as a user's shell would: the client reads that size and resizes
/// the exec's TTY to it.
fn under_pty(docker_host: &str, command: &str) -> Output {
    let mut script = Command::new("script");
    script
        .args(["-qec", &format!("stty rows 33 cols 111; {command}"), "/dev/null"])
        .env("DOCKER_HOST", docker_host);
    output_within(script, None, Duration::from_secs(60))
}

#[test]
fn cli_exec_tty_is_resized_to_the_terminal() {
    let gate = Gate::start();
    let c = Container::run("cliresize", &[]);
    let out =
        under_pty(&gate.host(), &format!("docker exec -t {} sh -c '{PRINT_SIZE}; tty; exit 6'", c.name));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size=33 111"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
}

/// `docker exec -it` under a terminal, detached with ctrl-p ctrl-q once the
/// process has printed `started`; returns the CLI's output and exit code.
fn cli_detach_keys(docker_host: &str, container: &str, flag: &str) -> (String, Option<i32>) {
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("docker exec -it {container} sh -c 'echo started; sleep 3; echo detached > {flag}'"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", docker_host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    while !seen.contains("started") {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            break;
        }
        seen.push_str(&line);
    }
    // Ignored when it fails: the CLI is gone then, and its output says why.
    let _ = stdin.write_all(b"\x10\x11");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    seen.push_str(&rest);
    let status = child.wait().expect("wait");
    drop(stdin);
    (seen, status.code())
}

#[test]
fn cli_exec_detach_keys_leave_the_process_running() {
    let gate = Gate::start();
    let c = Container::run("clidetach", &[]);
    let (direct_out, direct_code) = cli_detach_keys(&direct_host(), &c.name, "/tmp/direct");
    assert!(direct_out.contains("read escape sequence"), "{direct_out}");
    let (out, code) = cli_detach_keys(&gate.host(), &c.name, "/tmp/flag");
    assert!(out.contains("started") && out.contains("read escape sequence"), "{out}");
    assert_eq!(code, direct_code, "exit code after detaching: {out}");
    assert_eq!(file_in(&c.name, "/tmp/flag"), "", "the CLI waited for the process instead of detaching");
    assert_detached_flag(&c.name, "/tmp/flag");
}

// ---- compose v2 ----

/// A compose project on the daemon, taken down (straight on the daemon) on drop.
struct Compose {
    dir: TempDir,
    project: String,
}

impl Compose {
    fn new(tag: &str) -> Self {
        let probe = Command::new("docker").args(["compose", "version"]).output().expect("docker");
        assert!(
            probe.status.success(),
            "`docker compose` (the compose v2 CLI plugin) is missing; run `sudo scripts/testbed.sh` (never skipped): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let dir = TempDir::new(tag);
        std::fs::write(
            dir.path().join("compose.yaml"),
            format!(
                "services:\n  box:\n    image: {IMAGE}\n    user: app\n    network_mode: none\n    command: [\"sleep\", \"3600\"]\n"
            ),
        )
        .expect("compose file");
        Compose { dir, project: unique(tag) }
    }

    fn file(&self) -> String {
        self.dir.path().join("compose.yaml").display().to_string()
    }

    /// `docker compose -f FILE -p PROJECT …` aimed at `host`.
    fn command(&self, host: &str) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", host).args(["compose", "-f", &self.file(), "-p", &self.project]);
        cmd
    }

    /// The same as a shell command line, for `script`.
    fn shell(&self) -> String {
        format!("docker compose -f {} -p {}", self.file(), self.project)
    }

    fn run(&self, gate: &Gate, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command(&gate.host());
        cmd.args(args);
        output_within(cmd, stdin, Duration::from_secs(60))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.command(&direct_host()).args(["down", "-t", "0", "--remove-orphans"]).output();
    }
}

#[test]
fn compose_exec_stdin_tty_detach_and_refusal() {
    let gate = Gate::start();
    let compose = Compose::new("compose-exec");
    let up = compose.run(&gate, &["up", "-d"], None);
    assert!(up.status.success(), "compose up: {}\n{}", String::from_utf8_lossy(&up.stderr), log_tail(&gate));

    // -T: pipes; stdin's EOF reaches the process, streams stay apart, the exit code crosses.
    let out = compose.run(
        &gate,
        &["exec", "-T", "box", "sh", "-c", "wc -c; echo to-err >&2; exit 5"],
        Some(b"twelve bytes"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "12\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    assert_eq!(out.status.code(), Some(5));

    // With a pty: a TTY exec, resized to the terminal.
    let out =
        under_pty(&gate.host(), &format!("{} exec box sh -c '{PRINT_SIZE}; tty; exit 6'", compose.shell()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size=33 111") && text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");

    // -d: detached.
    let out =
        compose.run(&gate, &["exec", "-d", "box", "sh", "-c", "sleep 0.2; echo detached > /tmp/flag"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ps = ok_stdout(&compose.command(&direct_host()).args(["ps", "-q", "box"]).output().expect("ps"));
    assert_detached_flag(ps.trim(), "/tmp/flag");

    // As root: refused, with the reason on stderr.
    let out = compose.run(&gate, &["exec", "-T", "-u", "root", "box", "id", "-u"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(ROOT_REASON), "{err}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn compose_run_with_pipes_and_with_a_pty() {
    let gate = Gate::start();
    let compose = Compose::new("compose-run");
    let out = compose.run(
        &gate,
        &["run", "--rm", "-T", "box", "sh", "-c", "wc -c; id -u; echo to-err >&2; exit 7"],
        Some(b"twelve bytes"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "12\n1000\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("to-err"));
    assert_eq!(out.status.code(), Some(7));

    let out = under_pty(
        &gate.host(),
        &format!("{} run --rm box sh -c '{PRINT_SIZE}; tty; exit 3'", compose.shell()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size=33 111") && text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
}

// ---- BuildKit ----

/// A build context whose RUN step cannot come from the cache.
fn build_context(tag: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    let marker = unique(tag);
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /built && id -u >> /built\n"),
    )
    .expect("Dockerfile");
    std::fs::write(dir.path().join("hello.txt"), format!("{marker}\n")).expect("context file");
    (dir, marker)
}

/// Removes an image straight on the daemon on drop.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = direct_docker().args(["rmi", "-f", &self.0]).output();
    }
}

fn assert_buildkit_build(gate: &Gate, args: &[&str], tag: &str) {
    let probe = Command::new("docker").args(["buildx", "version"]).output().expect("docker");
    assert!(
        probe.status.success(),
        "`docker buildx` (the buildx CLI plugin) is missing; run `sudo scripts/testbed.sh` (never skipped)"
    );
    let (dir, marker) = build_context(tag);
    let image = format!("{}:test", unique(tag));
    let _guard = ImageGuard(image.clone());
    let mut cmd = gate.docker();
    cmd.args(args).args(["--progress", "plain", "--network", "none", "-t", &image]).arg(dir.path());
    let out = output_within(cmd, None, Duration::from_secs(120));
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed:\n{progress}\nexecgate log:\n{}", log_tail(gate));
    // BuildKit's plain progress (the classic builder prints "Step 1/3").
    assert!(progress.contains("[internal] load build definition"), "not BuildKit:\n{progress}");
    assert!(progress.contains("RUN cat /hello.txt"), "{progress}");
    let ran = ok_stdout(&gate.run(&["run", "--rm", "--network", "none", &image, "cat", "/built"]));
    assert_eq!(ran, format!("{marker}\n0\n"));
}

#[test]
fn buildx_build_uses_buildkit_sessions_through_execgate() {
    let gate = Gate::start();
    assert_buildkit_build(&gate, &["buildx", "build", "--load"], "buildx");
}

#[test]
fn docker_build_with_buildx_installed_is_buildkit() {
    let gate = Gate::start();
    assert_buildkit_build(&gate, &["build"], "bkbuild");
}

// ---- docker-py ----

#[test]
fn docker_py_exec_run_plain_stream_and_demux() {
    let py = Client::python();
    let gate = Gate::start();
    let c = Container::run("py", &[]);
    let plain = py.same_as_direct(&gate, &["plain", &c.name]);
    assert_eq!(plain["exit_code"], 3, "{plain}");
    assert_eq!(s(&plain, "output"), "to-out\nto-err\n");

    let stream = py.same_as_direct(&gate, &["stream", &c.name]);
    assert_eq!(s(&stream, "output"), "line1\nline2\nline3\n");
    assert_eq!(stream["exit_code"], 5, "{stream}");
    assert_eq!(s(&stream, "exec_run_output"), "via-exec-run\n");

    let demux = py.same_as_direct(&gate, &["demux", &c.name]);
    assert_eq!((s(&demux, "stdout"), s(&demux, "stderr")), ("to-out\n", "to-err\n"));
    assert_eq!(demux["exit_code"], 3);
}

#[test]
fn docker_py_socket_carries_stdin_to_eof() {
    let py = Client::python();
    let gate = Gate::start();
    let c = Container::run("pysock", &[]);
    let got = py.same_as_direct(&gate, &["socket", &c.name]);
    assert_eq!((s(&got, "stdout"), s(&got, "stderr")), ("12\n", "to-err\n"), "{got}");
    assert_eq!(got["exit_code"], 4);
    assert_eq!(s(&got, "exec_run_output"), "via exec_run\n");
}

#[test]
fn docker_py_tty_resize_and_detach() {
    let py = Client::python();
    let gate = Gate::start();
    let c = Container::run("pytty", &[]);
    let tty = py.same_as_direct(&gate, &["tty", &c.name]);
    assert_eq!(s(&tty, "output"), "go\r\n33 111\r\n/dev/pts/\r\n", "{tty}");
    assert_eq!(tty["exit_code"], 6);

    let detached = py.through(&gate, &["detach", &c.name, "/tmp/flag"]);
    assert_eq!(detached["exit_code"], Value::Null, "{detached}");
    assert_detached_flag(&c.name, "/tmp/flag");
}

#[test]
fn docker_py_refusals_read_execgate_reason() {
    let py = Client::python();
    let gate = Gate::start();
    let c = Container::run("pyrefuse", &[]);
    let got = py.through(&gate, &["refuse", &c.name]);
    assert_eq!(got["refused"], true, "{got}");
    assert_eq!(got["status"], 403, "{got}");
    assert!(s(&got, "explanation").contains(ROOT_REASON), "{got}");
    assert!(s(&got, "str").contains("403 Client Error") && s(&got, "str").contains(ROOT_REASON), "{got}");

    let id = root_exec_behind_the_gate(&c.name);
    let got = py.through(&gate, &["refuse_start", &c.name, &id]);
    assert_eq!(got["refused"], true, "{got}");
    assert_eq!(got["status"], 403, "{got}");
    assert!(s(&got, "explanation").contains(START_REASON), "{got}");
}

// ---- dockerode ----

#[test]
fn dockerode_start_without_hijack_streams_to_the_end() {
    let node = Client::node();
    let gate = Gate::start();
    let c = Container::run("nodeplain", &[]);
    let got = node.same_as_direct(&gate, &["start_plain", &c.name]);
    assert_eq!((s(&got, "stdout"), s(&got, "stderr")), ("to-out\n", "to-err\n"), "{got}");
    assert_eq!(got["exit_code"], 3);
    assert_eq!(got["running"], false);
}

#[test]
fn dockerode_hijacked_start_carries_stdin_to_eof() {
    let node = Client::node();
    let gate = Gate::start();
    let c = Container::run("nodehijack", &[]);
    let got = node.same_as_direct(&gate, &["start_hijack", &c.name]);
    assert_eq!((s(&got, "stdout"), s(&got, "stderr")), ("12\n", "to-err\n"), "{got}");
    assert_eq!(got["exit_code"], 4);
}

#[test]
fn dockerode_tty_resize_and_detach() {
    let node = Client::node();
    let gate = Gate::start();
    let c = Container::run("nodetty", &[]);
    let tty = node.same_as_direct(&gate, &["tty_resize", &c.name]);
    assert_eq!(s(&tty, "output"), "go\r\n33 111\r\n/dev/pts/\r\n", "{tty}");
    assert_eq!(tty["exit_code"], 6);

    let detached = node.through(&gate, &["detach", &c.name, "/tmp/flag"]);
    assert_eq!(detached["status"], 200, "{detached}");
    assert_eq!(s(&detached, "body"), "");
    assert_detached_flag(&c.name, "/tmp/flag");
}

#[test]
fn dockerode_run_attaches_without_upgrade() {
    let node = Client::node();
    let gate = Gate::start();
    let name = unique("noderun");
    let _guard = Container { name: name.clone() };
    let got = node.through(&gate, &["run", IMAGE, &name]);
    assert_eq!((s(&got, "stdout"), s(&got, "stderr")), ("run-out\n", "run-err\n"), "{got}");
    assert_eq!(got["status_code"], 7);
    // The attach was judged and recorded; the options dockerode repeats as a
    // JSON body were read and not forwarded (the daemon would take them for stdin).
    let start = common::wait_record(&gate.audit, "attach.start", Duration::from_secs(5), |r| {
        r["event"] == "attach.start"
    });
    assert_eq!(start["decision"], "allow", "{start}");
    assert!(start["ignored_body_bytes"].as_u64().is_some_and(|n| n > 0), "{start}");
    let end = common::wait_record(&gate.audit, "attach.end", Duration::from_secs(10), |r| {
        r["event"] == "attach.end"
    });
    assert_eq!((&end["reason"], &end["exit_code"]), (&"exited".into(), &7.into()), "{end}");
}

#[test]
fn dockerode_refusals_read_execgate_reason() {
    let node = Client::node();
    let gate = Gate::start();
    let c = Container::run("noderefuse", &[]);
    let got = node.through(&gate, &["refuse", &c.name]);
    assert_eq!(got["refused"], true, "{got}");
    assert_eq!(got["status"], 403, "{got}");
    assert!(s(&got, "message").contains(ROOT_REASON), "{got}");

    let id = root_exec_behind_the_gate(&c.name);
    let got = node.through(&gate, &["refuse_start", &c.name, &id]);
    assert_eq!(got["refused"], true, "{got}");
    assert_eq!(got["status"], 403, "{got}");
    assert!(s(&got, "message").contains(START_REASON), "{got}");
}

// ---- the Go SDK ----

#[test]
fn go_sdk_exec_attach_carries_stdin_to_eof() {
    let go = Client::go();
    let gate = Gate::start();
    let c = Container::run("goattach", &[]);
    let got = go.same_as_direct(&gate, &["attach", &c.name]);
    assert_eq!((s(&got, "stdout"), s(&got, "stderr")), ("12\n", "to-err\n"), "{got}");
    assert_eq!(got["exit_code"], 4);
}

#[test]
fn go_sdk_tty_resize_and_detach() {
    let go = Client::go();
    let gate = Gate::start();
    let c = Container::run("gotty", &[]);
    let tty = go.same_as_direct(&gate, &["tty", &c.name]);
    assert_eq!(s(&tty, "output"), "go\r\n33 111\r\n/dev/pts/\r\n", "{tty}");
    assert_eq!(tty["exit_code"], 6);

    let detached = go.through(&gate, &["detach", &c.name, "/tmp/flag"]);
    assert_eq!(detached["started"], true, "{detached}");
    assert_detached_flag(&c.name, "/tmp/flag");
}

#[test]
fn go_sdk_refusals_read_execgate_reason() {
    let go = Client::go();
    let gate = Gate::start();
    let c = Container::run("gorefuse", &[]);
    let got = go.through(&gate, &["refuse", &c.name]);
    assert_eq!(got["refused"], true, "{got}");
    assert_eq!(got["forbidden"], true, "errdefs.IsForbidden: {got}");
    assert!(s(&got, "message").contains(&format!("Error response from daemon: {ROOT_REASON}")), "{got}");

    // The SDK's hijack drops the body of a non-101 answer: only the status shows.
    let id = root_exec_behind_the_gate(&c.name);
    let got = go.through(&gate, &["refuse_start", &c.name, &id]);
    assert_eq!(got["refused"], true, "{got}");
    assert!(s(&got, "message").contains("received 403"), "{got}");
}
