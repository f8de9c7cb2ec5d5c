//! What execgate holds per client connection and per exec session, and for
//! how long after they end: the numbers behind the connection limit's
//! fds-per-connection budget and the idle timeouts (README, *Resource bounds*).
//!
//! One run starts execgate (this crate's release binary, default flags unless
//! given) in front of the daemon and prints markdown tables of:
//! 1. fds per client connection: connected and silent, and idle after one
//!    request (keep-alive, with the daemon connection pinned to it);
//! 2. execgate's RSS with 1,000 such connections open;
//! 3. fds per live exec session: `docker exec -i` (the CLI opens two
//!    connections: one hijacked for the stream, one kept alive for create
//!    and inspect) and a raw session on one connection;
//! 4. how long execgate keeps fds after each kind of session ends: an
//!    attached exec that exits, a detached exec that exits, a client that
//!    hangs up mid-session, and an idle keep-alive client that says nothing.
//!
//! Fds are read from `/proc/<pid>/fd` and sorted with `/proc/net/unix`:
//! client sockets (accepted, they carry the listening socket's path), daemon
//! sockets (connected, without a path; the runtime's own socketpair is in the
//! starting level), session recordings, and the rest (audit log, listener…).
//! Lifetimes are polled every 20 ms, from the moment the end is seen from
//! outside (the CLI exited, the daemon reports the exec stopped, the client
//! closed its socket) until each class is first back at its level before the
//! session (other work, such as an anchor written, may open a file briefly).
//!
//! Run it with `scripts/measure-fds.sh`, or `cargo bench --bench fds` on a host
//! where `scripts/testbed.sh` has already run. Settings, from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EXECGATE_MEASURE_ARGS` | (none) | extra `execgate serve` flags |
//! | `EXECGATE_MEASURE_BIN` | this crate's binary | another execgate build to measure |
//! | `EXECGATE_MEASURE_CONNS` | 1000 | idle connections for the RSS figure |
//! | `EXECGATE_MEASURE_SESSIONS` | 10 | concurrent sessions per live measurement |
//! | `EXECGATE_MEASURE_SETTLE` | 65 | seconds with nothing going on before the first measurement (two daemon idle timeouts) |
//! | `EXECGATE_MEASURE_MAX_WAIT` | 120 | seconds a lifetime is followed at most |
//! | `EXECGATE_TEST_DOCKER_SOCK` | /var/run/docker.sock | the daemon's socket |
//! | `EXECGATE_TEST_IMAGE` | execgate-test/busybox:latest | image of the session container |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

const PING: &[u8] = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n";
const POLL: Duration = Duration::from_millis(20);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("measure: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    upstream: PathBuf,
    image: String,
    bin: PathBuf,
    args: Vec<String>,
    conns: usize,
    sessions: usize,
    settle: Duration,
    max_wait: Duration,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn number(name: &str, default: u64) -> Result<u64> {
    let text = env_or(name, &default.to_string());
    text.trim().parse().map_err(|e| anyhow!("{name}={text:?} is not a whole number: {e}"))
}

impl Settings {
    fn from_env() -> Result<Self> {
        Ok(Settings {
            upstream: env_or("EXECGATE_TEST_DOCKER_SOCK", "/var/run/docker.sock").into(),
            image: env_or("EXECGATE_TEST_IMAGE", "execgate-test/busybox:latest"),
            bin: env_or("EXECGATE_MEASURE_BIN", env!("CARGO_BIN_EXE_execgate")).into(),
            args: env_or("EXECGATE_MEASURE_ARGS", "").split_whitespace().map(str::to_owned).collect(),
            conns: number("EXECGATE_MEASURE_CONNS", 1000)? as usize,
            sessions: number("EXECGATE_MEASURE_SESSIONS", 10)?.max(1) as usize,
            settle: Duration::from_secs(number("EXECGATE_MEASURE_SETTLE", 65)?),
            max_wait: Duration::from_secs(number("EXECGATE_MEASURE_MAX_WAIT", 120)?),
        })
    }
}

/// The fds a process holds, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    clients: i64,
    daemon: i64,
    /// Session recordings (`sessions/` of the audit directory).
    files: i64,
    /// The audit log, lock, diagnostic log, epoll, eventfd, pipes, the listener.
    other: i64,
}

impl Held {
    fn total(&self) -> i64 {
        self.clients + self.daemon + self.files + self.other
    }

    fn minus(&self, before: &Held) -> Held {
        Held {
            clients: self.clients - before.clients,
            daemon: self.daemon - before.daemon,
            files: self.files - before.files,
            other: self.other - before.other,
        }
    }

    fn classes(&self) -> [i64; 3] {
        [self.clients, self.daemon, self.files]
    }
}

fn held(pid: u32) -> Held {
    const LISTENING: u32 = 0x10000;
    const STREAM: u32 = 1;
    const CONNECTED: u32 = 3;
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let mut kinds = HashMap::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
        kinds.insert(f[6].to_owned(), (hex(f[3]), hex(f[4]), hex(f[5]), f.len() > 7));
    }
    let mut out = Held::default();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return out };
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            match kinds.get(inode) {
                Some(&(flags, STREAM, _, true)) if flags & LISTENING == 0 => out.clients += 1,
                Some(&(_, STREAM, CONNECTED, false)) => out.daemon += 1,
                _ => out.other += 1,
            }
        } else if target.contains("/sessions/") {
            out.files += 1;
        } else {
            out.other += 1;
        }
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits until what `pid` holds has not changed for `quiet`, at most `max`.
fn settle(pid: u32, quiet: Duration, max: Duration) -> Held {
    let deadline = Instant::now() + max;
    let (mut last, mut since) = (held(pid), Instant::now());
    while Instant::now() < deadline && since.elapsed() < quiet {
        std::thread::sleep(POLL);
        let now = held(pid);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// From `from`, how long until each of (clients, daemon, recordings) is
/// first back at `before`; `None`: not within `max`.
fn lifetimes(pid: u32, before: Held, from: Instant, max: Duration) -> [Option<Duration>; 3] {
    let mut back: [Option<Duration>; 3] = [None; 3];
    while from.elapsed() < max {
        let now = held(pid).classes();
        for (i, slot) in back.iter_mut().enumerate() {
            if slot.is_none() && now[i] <= before.classes()[i] {
                *slot = Some(from.elapsed());
            }
        }
        if back.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(POLL);
    }
    back
}

/// An execgate process on a private socket, stopped when dropped.
struct Gate {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Gate {
    fn start(settings: &Settings) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("execgate-measure-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let socket = dir.join("execgate.sock");
        let log = File::create(dir.join("execgate.log")).context("log file")?;
        let child = Command::new(&settings.bin)
            .arg("serve")
            .arg("--listen")
            .arg(&socket)
            .arg("--upstream")
            .arg(&settings.upstream)
            .arg("--audit-dir")
            .arg(dir.join("audit"))
            .args(["--log-level", "warn"])
            .args(&settings.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", settings.bin.display()))?;
        let gate = Gate { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(mut stream) = UnixStream::connect(&gate.socket)
                && ping(&mut stream).is_ok()
            {
                return Ok(gate);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("execgate did not answer on {} within 15 s; see {}", gate.socket.display(), gate.dir.display())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn connect(&self) -> Result<UnixStream> {
        let stream = UnixStream::connect(&self.socket).context("connect to execgate")?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(stream)
    }

    fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", format!("unix://{}", self.socket.display()));
        command
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A container on the daemon, removed when dropped.
struct Container {
    name: String,
    upstream: PathBuf,
}

impl Container {
    fn start(settings: &Settings) -> Result<Self> {
        let name = format!("execgate-measure-{}", std::process::id());
        let out = direct(&settings.upstream)
            .args(["run", "-d", "--user", "app", "--name", &name, &settings.image, "sleep", "3600"])
            .output()?;
        ensure!(out.status.success(), "docker run failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(Container { name, upstream: settings.upstream.clone() })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = direct(&self.upstream).args(["rm", "-f", &self.name]).output();
    }
}

fn direct(upstream: &Path) -> Command {
    let mut command = Command::new("docker");
    command.env("DOCKER_HOST", format!("unix://{}", upstream.display()));
    command
}

/// Reads one response with a Content-Length body; returns (head, body).
fn response(stream: &mut UnixStream) -> Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while data.len() < end + 4 + len {
                let n = stream.read(&mut buf)?;
                ensure!(n > 0, "EOF inside a body");
                data.extend_from_slice(&buf[..n]);
            }
            return Ok((head, data[end + 4..end + 4 + len].to_vec()));
        }
        let n = stream.read(&mut buf)?;
        ensure!(n > 0, "EOF before a response head ({} bytes)", data.len());
        data.extend_from_slice(&buf[..n]);
    }
}

fn ping(stream: &mut UnixStream) -> Result<()> {
    stream.write_all(PING)?;
    let (head, _) = response(stream)?;
    ensure!(head.starts_with("HTTP/1.1 200"), "ping answered {head}");
    Ok(())
}

fn post(stream: &mut UnixStream, path: &str, body: &str, upgrade: bool) -> Result<()> {
    let upgrade = if upgrade { "Connection: Upgrade\r\nUpgrade: tcp\r\n" } else { "" };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\n{upgrade}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    Ok(())
}

/// Creates an exec through execgate on its own connection; returns its id.
fn create_exec(gate: &Gate, container: &str, body: &str) -> Result<String> {
    let mut stream = gate.connect()?;
    post(&mut stream, &format!("/v1.41/containers/{container}/exec"), body, false)?;
    let (head, body) = response(&mut stream)?;
    ensure!(
        head.starts_with("HTTP/1.1 201"),
        "exec create answered {head}: {}",
        String::from_utf8_lossy(&body)
    );
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    value["Id"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("exec create answer without Id"))
}

/// Whether the daemon (asked directly) reports the exec as running.
fn exec_running(upstream: &Path, id: &str) -> Result<bool> {
    let mut stream = UnixStream::connect(upstream)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET /v1.41/exec/{id}/json HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes())?;
    let (_, body) = response(&mut stream)?;
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(value["Running"].as_bool().unwrap_or(false))
}

fn ms(d: Option<Duration>, max: Duration) -> String {
    match d {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("> {} s", max.as_secs()),
    }
}

fn per(delta: i64, n: usize) -> String {
    format!("{:.2}", delta as f64 / n as f64)
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    // The measuring side holds the client ends of every connection.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let container = Container::start(&settings)?;
    let gate = Gate::start(&settings)?;
    let pid = gate.pid();
    let mut out = String::new();
    let flags = if settings.args.is_empty() { "default flags".to_owned() } else { settings.args.join(" ") };
    writeln!(
        out,
        "execgate {} ({flags}) in front of {}\n",
        settings.bin.display(),
        settings.upstream.display()
    )?;

    eprintln!("measure: letting start-up settle ({} s)", settings.settle.as_secs());
    std::thread::sleep(settings.settle);
    let base = settle(pid, Duration::from_secs(2), Duration::from_secs(30));
    let base_rss = rss_kib(pid);

    // 1 and 2: idle connections.
    eprintln!("measure: {} idle connections", settings.conns);
    let mut conns = (0..settings.conns).map(|_| gate.connect()).collect::<Result<Vec<_>>>()?;
    let silent = settle(pid, Duration::from_secs(1), Duration::from_secs(30)).minus(&base);
    let silent_rss = rss_kib(pid);
    for conn in &mut conns {
        ping(conn)
            .context("a ping on an idle connection (refused? raise the fd limit or --max-connections)")?;
    }
    let idle = settle(pid, Duration::from_secs(1), Duration::from_secs(30)).minus(&base);
    let idle_rss = rss_kib(pid);
    drop(conns);
    settle(pid, Duration::from_secs(1), Duration::from_secs(30));

    writeln!(out, "**Per client connection** ({} connections; fds each, RSS in KiB)\n", settings.conns)?;
    writeln!(out, "| state | client | daemon | recordings | total fds | RSS total | RSS per connection |")?;
    writeln!(out, "|---|--:|--:|--:|--:|--:|--:|")?;
    writeln!(out, "| no connection | | | | {} | {base_rss} | |", base.total())?;
    for (name, d, rss) in
        [("connected, silent", silent, silent_rss), ("idle after one request (keep-alive)", idle, idle_rss)]
    {
        writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {rss} | {:.1} |",
            per(d.clients, settings.conns),
            per(d.daemon, settings.conns),
            per(d.files, settings.conns),
            per(d.total(), settings.conns),
            rss.saturating_sub(base_rss) as f64 / settings.conns as f64
        )?;
    }

    // 3: live sessions.
    let n = settings.sessions;
    eprintln!("measure: {n} live `docker exec -i` sessions");
    let before = held(pid);
    let mut clis = (0..n)
        .map(|_| {
            gate.docker()
                .args(["exec", "-i", &container.name, "cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("docker exec -i")
        })
        .collect::<Result<Vec<_>>>()?;
    let cli_live = settle(pid, Duration::from_secs(2), Duration::from_secs(60)).minus(&before);
    ensure!(cli_live.files >= n as i64, "the {n} sessions did not all start: {cli_live:?}");
    // Closing stdin ends each `cat`, and with it the session.
    for cli in &mut clis {
        drop(cli.stdin.take());
    }
    for cli in &mut clis {
        let _ = cli.wait();
    }
    settle(pid, Duration::from_secs(2), settings.max_wait);

    eprintln!("measure: {n} live raw sessions");
    let before = held(pid);
    let ids = (0..n)
        .map(|_| {
            create_exec(&gate, &container.name, r#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"]}"#)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut raws = Vec::new();
    for id in &ids {
        let mut stream = gate.connect()?;
        post(&mut stream, &format!("/v1.41/exec/{id}/start"), r#"{"Tty":false}"#, true)?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        ensure!(head.starts_with(b"HTTP/1.1 101"), "start answered {}", String::from_utf8_lossy(&head));
        raws.push(stream);
    }
    let raw_live = settle(pid, Duration::from_secs(2), Duration::from_secs(60)).minus(&before);
    drop(raws);
    settle(pid, Duration::from_secs(2), settings.max_wait);

    writeln!(out, "\n**Per live exec session** ({n} at once; fds each)\n")?;
    writeln!(out, "| session | client | daemon | recordings | total |")?;
    writeln!(out, "|---|--:|--:|--:|--:|")?;
    for (name, d) in [
        ("`docker exec -i … cat` (CLI: stream + keep-alive connection)", cli_live),
        ("raw start on one connection (`cat`)", raw_live),
    ] {
        writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            per(d.clients, n),
            per(d.daemon, n),
            per(d.files, n),
            per(d.total(), n)
        )?;
    }

    // Each lifetime starts from a drained state: nothing changed for
    // `settle` (two daemon idle timeouts), so no pooled connection of an
    // earlier step is still waiting to be reaped, or reused by this one.
    let drained = || settle(pid, settings.settle, settings.settle + settings.max_wait);

    // 4b: an attached exec that exits.
    eprintln!("measure: after an attached exec exits");
    let before = drained();
    let status = gate.docker().args(["exec", &container.name, "sh", "-c", "sleep 1"]).status()?;
    ensure!(status.success(), "docker exec failed: {status}");
    let attached = lifetimes(pid, before, Instant::now(), settings.max_wait);

    // 4c: a detached exec that exits.
    eprintln!("measure: after a detached exec exits");
    let before = drained();
    let id = create_exec(&gate, &container.name, r#"{"Cmd":["sh","-c","sleep 2"]}"#)?;
    {
        let mut stream = gate.connect()?;
        post(&mut stream, &format!("/v1.41/exec/{id}/start"), r#"{"Detach":true}"#, false)?;
        let (head, _) = response(&mut stream)?;
        ensure!(head.starts_with("HTTP/1.1 200"), "detached start answered {head}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while exec_running(&settings.upstream, &id)? {
        ensure!(Instant::now() < deadline, "the detached exec did not end");
        std::thread::sleep(POLL);
    }
    let detached = lifetimes(pid, before, Instant::now(), settings.max_wait);

    // 4c': the client hangs up mid-session; the exec runs on until it ends.
    eprintln!("measure: after clients hang up mid-session");
    let before = drained();
    let ids = (0..n)
        .map(|_| create_exec(&gate, &container.name, r#"{"AttachStdout":true,"Cmd":["sh","-c","sleep 20"]}"#))
        .collect::<Result<Vec<_>>>()?;
    let mut streams = Vec::new();
    for id in &ids {
        let mut stream = gate.connect()?;
        post(&mut stream, &format!("/v1.41/exec/{id}/start"), r#"{"Tty":false}"#, true)?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        ensure!(head.starts_with(b"HTTP/1.1 101"), "start answered {}", String::from_utf8_lossy(&head));
        streams.push(stream);
    }
    settle(pid, Duration::from_secs(1), Duration::from_secs(10));
    drop(streams);
    let hung_up = Instant::now();
    let upstream = settings.upstream.clone();
    let exec_ended = std::thread::spawn(move || -> Result<Duration> {
        for id in &ids {
            while exec_running(&upstream, id)? {
                std::thread::sleep(POLL);
            }
        }
        Ok(hung_up.elapsed())
    });
    let hangup = lifetimes(pid, before, hung_up, settings.max_wait);
    let exec_ended = exec_ended.join().map_err(|_| anyhow!("exec watcher panicked"))??;

    // 4d: an idle keep-alive client that says nothing more.
    eprintln!("measure: after an idle keep-alive client falls silent");
    let before = drained();
    let mut quiet = gate.connect()?;
    ping(&mut quiet)?;
    let silent_from = Instant::now();
    let idle_client = lifetimes(pid, before, silent_from, settings.max_wait);
    drop(quiet);

    let max = settings.max_wait;
    writeln!(
        out,
        "\n**How long execgate keeps fds after a session ends** (until first back at the level before it)\n"
    )?;
    writeln!(out, "| session end | client sockets | daemon sockets | recordings |")?;
    writeln!(out, "|---|--:|--:|--:|")?;
    for (name, t) in [
        ("attached exec exits (`docker exec … sleep 1`)", attached),
        ("detached exec exits (`-d`, from the daemon's report)", detached),
        (
            &format!("client hangs up mid-session (its exec ends {:.1} s later)", exec_ended.as_secs_f64()),
            hangup,
        ),
        ("idle keep-alive client stays silent (from its last answer)", idle_client),
    ] {
        writeln!(out, "| {name} | {} | {} | {} |", ms(t[0], max), ms(t[1], max), ms(t[2], max))?;
    }
    print!("{out}");
    Ok(())
}
