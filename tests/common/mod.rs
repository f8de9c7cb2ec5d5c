//! Shared harness for tests against a real Docker daemon: an execgate process on
//! a temporary socket, the docker CLI pointed at it, and throwaway containers.
//!
//! The daemon comes from `scripts/testbed.sh` (the README's test command runs it).
//! A missing daemon is a failure, never a skip: these tests are the proof.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The busybox image `scripts/testbed.sh` builds (on every Docker daemon of the test bed).
pub const IMAGE: &str = "execgate-test/busybox:latest";
/// The same image as Podman names it after `podman load`.
pub const PODMAN_IMAGE: &str = "localhost/execgate-test/busybox:latest";

/// The Docker daemon every test talks to, directly or through execgate:
/// `EXECGATE_TEST_DOCKER_SOCK`, else the system daemon (`/var/run/docker.sock`,
/// Docker 20.10). `scripts/test.sh` runs the suite once more with it pointed at
/// the test bed's Docker 28.5 (`/run/execgate-testbed/d28.sock`).
pub fn docker_sock() -> &'static str {
    static SOCK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOCK.get_or_init(|| env_path("EXECGATE_TEST_DOCKER_SOCK", "/var/run/docker.sock"))
}

/// The test bed's Podman API service: `EXECGATE_TEST_PODMAN_SOCK`, else
/// `/run/execgate-testbed/podman.sock` (Podman 4.3, image [`PODMAN_IMAGE`]).
pub fn podman_sock() -> &'static str {
    static SOCK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOCK.get_or_init(|| env_path("EXECGATE_TEST_PODMAN_SOCK", "/run/execgate-testbed/podman.sock"))
}

/// A socket path from the environment: a bare path or a `unix://` URL.
fn env_path(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_start_matches("unix://").to_owned(),
        _ => default.to_owned(),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call.
pub fn unique(tag: &str) -> String {
    format!("eg-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh temporary directory named after `tag`, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir =
            tempfile::Builder::new().prefix(&format!("{}-", unique(tag))).tempdir().expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Panics with a pointer to the test bed when the real daemon is not there.
pub fn require_daemon() {
    require_engine(docker_sock(), IMAGE, "EXECGATE_TEST_DOCKER_SOCK");
}

/// Panics with a pointer to the test bed when the Podman service is not there.
pub fn require_podman() {
    require_engine(podman_sock(), PODMAN_IMAGE, "EXECGATE_TEST_PODMAN_SOCK");
}

fn require_engine(sock: &str, image: &str, var: &str) {
    let ok = UnixStream::connect(sock).is_ok()
        && Command::new("docker")
            .args(["-H", &format!("unix://{sock}"), "image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no daemon with image {image} at {sock} (${var}); run `sudo scripts/testbed.sh` first \
         (these tests never skip, CI={:?})",
        std::env::var("CI").ok()
    );
}

/// A running `execgate serve` on a temporary socket.
pub struct Gate {
    child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// The audit directory (a private one unless `--audit-dir` was passed).
    pub audit: PathBuf,
    _dir: TempDir,
}

impl Gate {
    /// Starts execgate in front of the real daemon.
    pub fn start() -> Self {
        require_daemon();
        Self::start_with(Path::new(docker_sock()), &[])
    }

    /// Starts execgate in front of `upstream` with extra flags.
    pub fn start_with(upstream: &Path, extra: &[&str]) -> Self {
        Self::start_wrapped(&[], upstream, extra)
    }

    /// As [`Gate::start_with`], run through `wrapper`: a command that execs
    /// the rest in its own process, such as `prlimit --nofile=N:N`.
    pub fn start_wrapped(wrapper: &[&str], upstream: &Path, extra: &[&str]) -> Self {
        let dir = TempDir::new("gate");
        let socket = dir.path().join("execgate.sock");
        let log = dir.path().join("execgate.log");
        let given = extra.iter().position(|a| *a == "--audit-dir").and_then(|i| extra.get(i + 1));
        let audit = given.map_or_else(|| dir.path().join("audit"), PathBuf::from);
        let exe = env!("CARGO_BIN_EXE_execgate");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command.arg("serve").arg("--listen").arg(&socket).arg("--upstream").arg(upstream);
        command.args(["--log-level", "debug"]);
        if given.is_none() {
            command.arg("--audit-dir").arg(&audit);
        }
        if !extra.contains(&"--shutdown-grace") {
            command.args(["--shutdown-grace", "10"]);
        }
        let child = command
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn execgate");
        let gate = Gate { child, socket, log, audit, _dir: dir };
        gate.wait_ready();
        gate
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("execgate did not listen on {} in 10 s; log:\n{}", self.socket.display(), self.log_text());
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit on its own (after a signal), returning its exit code.
    pub fn wait_exit(mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "execgate did not exit within {within:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit code.
    pub fn stop_and_wait(self) -> Option<i32> {
        Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        self.wait_exit(Duration::from_secs(20))
    }

    /// A `docker` command aimed at this gate.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host());
        cmd
    }

    /// Runs the CLI through the gate; returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.docker().args(args).output().expect("run docker CLI")
    }

    /// Runs the CLI with `stdin` fed in.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .docker()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker CLI");
        let mut pipe = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait docker CLI");
        writer.join().expect("stdin writer");
        out
    }

    /// A raw connection to the gate's socket.
    pub fn connect(&self) -> UnixStream {
        let stream = UnixStream::connect(&self.socket).expect("connect to execgate");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        stream
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a CLI run succeeded and returns its stdout as text.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "docker failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container on the real daemon, removed on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --user app [extra] IMAGE sleep 3600`, directly on the
    /// daemon. The default user is non-root so the default policy allows execs
    /// that do not ask for a user; pass `--user root` in `extra` to override.
    pub fn run(tag: &str, extra: &[&str]) -> Self {
        Self::run_named(&unique(tag), extra)
    }

    /// As [`Container::run`], with an exact name.
    pub fn run_named(name: &str, extra: &[&str]) -> Self {
        require_daemon();
        let name = name.to_owned();
        let out = direct_docker()
            .args(["run", "-d", "--user", "app", "--name", &name])
            .args(extra)
            .args([IMAGE, "sleep", "3600"])
            .output()
            .expect("docker run");
        ok_stdout(&out);
        Container { name }
    }
}

impl Container {
    /// Runs `sh -c script` as root in the container, straight on the daemon
    /// (setup behind execgate's back); returns its stdout.
    pub fn as_root(&self, script: &str) -> String {
        ok_stdout(
            &direct_docker()
                .args(["exec", "-u", "root", &self.name, "sh", "-c", script])
                .output()
                .expect("exec"),
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = direct_docker().args(["rm", "-f", &self.name]).output();
    }
}

/// A `docker` command straight to the daemon (for setup and ground truth).
pub fn direct_docker() -> Command {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", format!("unix://{}", docker_sock()));
    cmd
}

/// Writes `request` on a new raw connection and reads until the peer closes or
/// `until` is found in what was read so far.
pub fn raw_exchange(stream: &mut UnixStream, request: &[u8], until: &[u8]) -> Vec<u8> {
    stream.write_all(request).expect("write request");
    read_until(stream, until)
}

/// Reads from `stream` until `needle` appears, EOF, or the read timeout.
pub fn read_until(stream: &mut UnixStream, needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if !needle.is_empty() && out.windows(needle.len()).any(|w| w == needle) {
            return out;
        }
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                panic!("read failed after {} bytes ({e}): {}", out.len(), String::from_utf8_lossy(&out))
            }
        }
    }
}

/// Reads a complete HTTP response with a Content-Length body; returns (head, body).
pub fn read_response(stream: &mut UnixStream) -> (String, Vec<u8>) {
    let mut data = read_until(stream, b"\r\n\r\n");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("response head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut buf = [0u8; 8192];
    while data.len() < split + len {
        let n = stream.read(&mut buf).expect("read body");
        assert!(n > 0, "EOF inside body: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    }
    let body = data[split..split + len].to_vec();
    (head, body)
}

/// `POST {version_prefix}/exec/{exec_id}/start` with `body`, asking to upgrade
/// the connection when `upgrade`.
pub fn start_request(version_prefix: &str, exec_id: &str, body: &str, upgrade: bool) -> Vec<u8> {
    let upgrade_headers = if upgrade { "Connection: Upgrade\r\nUpgrade: tcp\r\n" } else { "" };
    format!(
        "POST {version_prefix}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n{upgrade_headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Splits a non-TTY exec stream into (stream id, payload) frames.
pub fn frames(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let frames = execgate::docker_stream::frames(data).expect("the stream ends inside a frame");
    frames.into_iter().map(|(stream, payload)| (stream.id(), payload.to_vec())).collect()
}

/// Creates an exec directly on the daemon with `body` and returns its id.
pub fn create_exec_direct(container: &str, body: &str) -> String {
    create_exec_on(Path::new(docker_sock()), container, body)
}

/// Creates an exec through `socket` (execgate's or the daemon's) and returns its id.
pub fn create_exec_on(socket: &Path, container: &str, body: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let request = format!(
        "POST /v1.41/containers/{container}/exec HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 201"), "exec create failed: {head}{}", String::from_utf8_lossy(&body));
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    value["Id"].as_str().expect("Id").to_owned()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every record of the audit directory `dir`, in order.
pub fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit-")))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("log")
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// Waits (up to 20 s) for the `exec.end` record of the exec whose command
/// contains `marker`, in the audit directory `dir`.
pub fn exec_end_of(dir: &Path, marker: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = audit_records(dir);
        let id = all
            .iter()
            .find(|r| r["event"] == "exec.start" && r["command"].to_string().contains(marker))
            .and_then(|r| r["exec_id"].as_str().map(str::to_owned));
        if let Some(end) = id
            .and_then(|id| all.into_iter().find(|r| r["event"] == "exec.end" && r["exec_id"] == id.as_str()))
        {
            return end;
        }
        assert!(Instant::now() < deadline, "no exec.end for {marker:?} in {}", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small deterministic generator (SplitMix64) for seeded corpora: a failure
/// reproduces from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------
// The audit trail, read back while execgate writes it

/// Complete lines (newline-terminated) of every log file in `dir`, in chain order.
pub fn log_lines(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // A batch may be mid-write: only whole lines count.
        let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
        out.extend(complete.lines().filter(|l| !l.is_empty()).map(|l| (name.clone(), l.to_owned())));
    }
    out
}

/// Every record of the log in `dir`.
pub fn records(dir: &Path) -> Vec<Value> {
    log_lines(dir)
        .into_iter()
        .map(|(_, l)| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Polls the log until a record matches `pred`.
pub fn wait_record(dir: &Path, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = records(dir).into_iter().find(&pred) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the audit log within {within:?}; log:\n{}",
            log_lines(dir).into_iter().map(|(_, l)| l).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `execgate audit verify DIR` must pass; returns what it printed.
pub fn verify_ok(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .expect("run audit verify");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.starts_with("ok: "),
        "audit verify failed ({:?}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A tmpfs mounted for the test; unmounted on drop, even after a failure.
pub struct Tmpfs {
    pub mount: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = TempDir::new("tmpfs");
        let mount = dir.path().join("audit");
        std::fs::create_dir(&mount).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs failed (these tests run as root)");
        Tmpfs { mount, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Writes zeros to `path` until the filesystem refuses (ENOSPC).
pub fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(28), "expected ENOSPC, got {err}");
                break;
            }
        }
    }
    let _ = file.sync_all();
}

/// The stored bytes of one stream of a JSON-lines recording.
pub fn stream_bytes(recording: &str, stream: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for event in recording.lines().skip(1).map(|l| serde_json::from_str::<Value>(l).expect("event")) {
        if event["s"] != stream {
            continue;
        }
        match (event["d"].as_str(), event["b64"].as_str()) {
            (Some(text), _) => out.extend_from_slice(text.as_bytes()),
            (None, Some(b64)) => out.extend(
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64"),
            ),
            _ => panic!("event without data: {event}"),
        }
    }
    out
}
