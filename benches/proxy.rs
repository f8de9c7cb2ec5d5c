//! End-to-end benchmark of execgate against a real Docker daemon.
//!
//! One run measures, and prints as markdown tables:
//! 1. the keep-alive request rate and p50/p99 latency of `GET /_ping` and
//!    `GET /containers/json`, at 1 and at 16 connections, straight to the daemon,
//!    through execgate (the release binary of this crate) and through socat (a
//!    plain byte pipe, the floor any Unix-socket proxy pays), with the CPU each
//!    party burned while doing it;
//! 2. the time to stream a large exec output (1 GiB of zeros from `dd`, read as
//!    the raw multiplexed stream after `Upgrade: tcp`) through each. `dd` with
//!    1 MiB blocks rather than busybox `head -c`: the latter burns ~3 s of CPU
//!    per GiB on its own, which on a small machine caps the stream and hides the
//!    proxy's cost behind the generator's.
//!
//! The load generator is lean on purpose: the machine has few cores and the
//! daemon, the proxy and the client all share them. One tokio `current_thread`
//! runtime drives every connection with hand-written requests, one in flight per
//! connection, and parses only the response head (`httparse`) and its framing.
//! CPU use is sampled from `/proc` on a separate thread, off the request path:
//! the client, the proxy (socat with its per-connection children), dockerd, the
//! container's shim, and the whole machine. What none of them accounts for is
//! "other" load; a measurement with much of it is taken again, and flagged.
//!
//! The exec runs as uid 1000: execgate's default policy refuses root execs.
//!
//! Run it with `scripts/bench.sh`, or `cargo bench --bench proxy` on a host where
//! `scripts/testbed.sh` has already run. Settings, all from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EXECGATE_BENCH_SECS` | 3 | measured seconds per cell |
//! | `EXECGATE_BENCH_WARMUP` | 0.5 | unmeasured seconds before each cell |
//! | `EXECGATE_BENCH_CONNS` | 1,16 | connection counts to measure |
//! | `EXECGATE_BENCH_ARGS` | (none) | extra `execgate serve` flags, e.g. `--workers 2` |
//! | `EXECGATE_BENCH_STREAM_BYTES` | 1073741824 | bytes each exec streams (whole MiB) |
//! | `EXECGATE_BENCH_STREAM_RUNS` | 5 | stream runs per target; 0 skips the stream test |
//! | `EXECGATE_BENCH_RETRIES` | 2 | re-measurements of a cell or run that other load disturbed |
//! | `EXECGATE_TEST_DOCKER_SOCK` | /var/run/docker.sock | the daemon's socket |
//! | `EXECGATE_TEST_IMAGE` | execgate-test/busybox:latest | image of the stream container |
//! | `EXECGATE_LOG` | warn | execgate's own log filter (its log goes to a temp file) |

use std::collections::HashMap;
use std::fmt::{Display, Write as _};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinSet;

/// The requests of the latency test: the cheapest route, and one that does work.
const ENDPOINTS: [&str; 2] = ["/_ping", "/containers/json"];

/// Clock ticks per second in `/proc/*/stat` and `/proc/stat` (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// One mebibyte: the stream generator's block size.
const MIB: u64 = 1 << 20;

/// Read size of the stream client: large, so the client costs few syscalls.
const STREAM_CHUNK: usize = 256 * 1024;

/// CPU (% of one core) used beyond the sampled processes above which a
/// measurement counts as disturbed by other work on the machine: it is taken
/// again (`EXECGATE_BENCH_RETRIES`) and, if it stays disturbed, flagged.
const NOISY_OTHER_PERCENT: f64 = 25.0;

/// How long a proxy may take to answer its first `/_ping`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Set once Ctrl-C arrived, so the error the interrupted run ends with is not
/// mistaken for a finding.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What a Ctrl-C must still clean up; ordinary exits and errors go through the
/// guards' `Drop` instead.
static LEFTOVERS: Mutex<Leftovers> = Mutex::new(Leftovers { pids: Vec::new(), container: None, dir: None });

struct Leftovers {
    pids: Vec<u32>,
    container: Option<(PathBuf, String)>,
    dir: Option<PathBuf>,
}

fn leftovers() -> std::sync::MutexGuard<'static, Leftovers> {
    LEFTOVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn main() -> ExitCode {
    clean_up_on_ctrl_c();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => ExitCode::from(130),
        Err(err) => {
            eprintln!("bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let daemon = daemon_version(&settings.upstream)?;
    call_ok(&settings.upstream, "GET", &format!("/images/{}/json", settings.image), None, &[200])
        .with_context(|| format!("test image {} is missing; run scripts/testbed.sh", settings.image))?;

    let dir = TempDir::new()?;
    // Running before the latency test too, so `/containers/json` lists something.
    let container = Container::start(&settings.upstream, &settings.image)?;
    let execgate = Proxy::execgate(&dir.0, &settings)?;
    let socat = Proxy::socat(&dir.0, &settings.upstream)?;
    let targets = [
        Target { name: "direct", socket: settings.upstream.clone(), pid: None },
        execgate.target(),
        socat.target(),
    ];
    let probe = Probe::new(container.shim(&settings.upstream));
    eprintln!(
        "bench: dockerd {} on {}, execgate {}, {} s per cell after {} s warm-up",
        daemon.0,
        settings.upstream.display(),
        execgate_flags(&settings),
        settings.measure.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the load generator's runtime")?;
    let mut rows = Vec::new();
    for path in ENDPOINTS {
        for &conns in &settings.conns {
            let mut cells = Vec::new();
            for target in &targets {
                let what = format!("GET {path} x{conns} via {}", target.name);
                let cell = quietest(
                    &what,
                    settings.retries,
                    |cell: &Cell| cell.cpu,
                    || run_cell(&runtime, target, path, conns, &settings, &probe),
                )
                .with_context(|| format!("GET {path} via {} with {conns} connections", target.name))?;
                eprintln!(
                    "bench: GET {path:<16} x{conns:<3} {:<8} {:>8.0} req/s  p50 {} µs  p99 {} µs",
                    target.name,
                    cell.rate,
                    micros(cell.p50),
                    micros(cell.p99)
                );
                cells.push(cell);
            }
            rows.push(Row { path, conns, cells });
        }
    }

    let mut streams = Vec::new();
    if settings.stream_runs > 0 {
        streams = targets
            .iter()
            .map(|t| Stream { name: t.name, secs: Vec::new(), cpu: CpuUse::default() })
            .collect();
        for run in 1..=settings.stream_runs {
            for (target, stream) in targets.iter().zip(&mut streams) {
                let what = format!("stream run {run} via {}", target.name);
                let result = quietest(
                    &what,
                    settings.retries,
                    |r: &StreamRun| r.cpu,
                    || stream_once(target, &container.name, settings.stream_bytes, &probe),
                )
                .with_context(|| {
                    format!(
                        "streaming {} from an exec via {} (run {run})",
                        bytes_text(settings.stream_bytes),
                        target.name
                    )
                })?;
                eprintln!(
                    "bench: stream {} via {:<8} run {run}: {:.2} s, {:.0} MiB/s",
                    bytes_text(settings.stream_bytes),
                    target.name,
                    result.secs,
                    mib_per_sec(settings.stream_bytes, result.secs)
                );
                stream.secs.push(result.secs);
                stream.cpu.add(&result.cpu);
            }
        }
    }

    execgate.ensure_alive()?;
    socat.ensure_alive()?;
    print!("{}", report(&settings, &daemon, probe.cpus, &rows, &streams));
    Ok(())
}

/// Runs a measurement until nothing else on the machine disturbed it (more than
/// [`NOISY_OTHER_PERCENT`] of a core), at most `retries` times more, and keeps
/// the least disturbed attempt.
fn quietest<T>(
    what: &str,
    retries: usize,
    cpu: impl Fn(&T) -> CpuUse,
    mut measure: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut best: Option<T> = None;
    for attempt in 0..=retries {
        let result = measure()?;
        let other = cpu(&result).other_percent();
        if best.as_ref().is_none_or(|b| other < cpu(b).other_percent()) {
            best = Some(result);
        }
        if other <= NOISY_OTHER_PERCENT {
            break;
        }
        if attempt < retries {
            eprintln!("bench: {what}: other processes used {other:.0}% of a core meanwhile; measuring again");
        }
    }
    best.context("no measurement was made")
}

/// Benchmark settings, read from the environment (see the module docs).
struct Settings {
    upstream: PathBuf,
    image: String,
    warmup: Duration,
    measure: Duration,
    conns: Vec<usize>,
    execgate_args: Vec<String>,
    stream_bytes: u64,
    stream_runs: usize,
    retries: usize,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let measure = secs_var("EXECGATE_BENCH_SECS", 3.0)?;
        ensure!(!measure.is_zero(), "EXECGATE_BENCH_SECS must be above 0");
        let conns = env_or("EXECGATE_BENCH_CONNS", "1,16")
            .split(',')
            .map(|c| match c.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(anyhow!(
                    "EXECGATE_BENCH_CONNS must list positive connection counts such as 1,16; got {c:?}"
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let stream_bytes = parse_var("EXECGATE_BENCH_STREAM_BYTES", 1 << 30)?;
        ensure!(
            stream_bytes > 0 && stream_bytes % MIB == 0,
            "EXECGATE_BENCH_STREAM_BYTES must be a positive whole number of MiB ({MIB} bytes); got {stream_bytes}"
        );
        Ok(Settings {
            upstream: env_or("EXECGATE_TEST_DOCKER_SOCK", "/var/run/docker.sock").into(),
            image: env_or("EXECGATE_TEST_IMAGE", "execgate-test/busybox:latest"),
            warmup: secs_var("EXECGATE_BENCH_WARMUP", 0.5)?,
            measure,
            conns,
            execgate_args: env_or("EXECGATE_BENCH_ARGS", "").split_whitespace().map(str::to_owned).collect(),
            stream_bytes,
            stream_runs: parse_var("EXECGATE_BENCH_STREAM_RUNS", 5)?,
            retries: parse_var("EXECGATE_BENCH_RETRIES", 2)?,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn parse_var<T>(name: &str, default: T) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => {
            text.trim().parse().map_err(|e| anyhow!("{name}={text:?} is not valid: {e}"))
        }
        _ => Ok(default),
    }
}

fn secs_var(name: &str, default: f64) -> Result<Duration> {
    let secs: f64 = parse_var(name, default)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow!("{name} must be a non-negative number of seconds; got {secs}"))
}

fn execgate_flags(settings: &Settings) -> String {
    if settings.execgate_args.is_empty() {
        "with default flags".to_owned()
    } else {
        format!("with `{}`", settings.execgate_args.join(" "))
    }
}

/// The daemon's version and API version; the error says how to get a daemon.
fn daemon_version(socket: &Path) -> Result<(String, String)> {
    let body = call_ok(socket, "GET", "/version", None, &[200]).with_context(|| {
        format!(
            "the Docker daemon is not reachable on {}; start it with scripts/testbed.sh \
             (or point EXECGATE_TEST_DOCKER_SOCK at its socket)",
            socket.display()
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).context("unreadable answer to GET /version")?;
    let field = |name: &str| value[name].as_str().unwrap_or("unknown").to_owned();
    Ok((field("Version"), field("ApiVersion")))
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client side.

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
struct Head {
    status: u16,
    /// Bytes of the head, blank line included.
    len: usize,
    framing: Framing,
    /// The server announced it closes the connection after this response.
    close: bool,
}

/// Parses a response head from the start of `buf`; `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf).context("malformed HTTP response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or_default();
    let (mut length, mut chunked, mut close) = (None, false, false);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            length =
                Some(value.parse::<usize>().with_context(|| format!("malformed Content-Length {value:?}"))?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().ends_with("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head { status, len, framing, close }))
}

/// Where the body following `head` ends in `buf`, once all of it is there.
fn body_end(buf: &[u8], head: &Head) -> Result<Option<usize>> {
    match head.framing {
        Framing::Empty => Ok(Some(head.len)),
        Framing::Length(n) => Ok((buf.len() >= head.len + n).then_some(head.len + n)),
        Framing::Chunked => walk_chunks(buf, head.len, None),
        Framing::UntilClose => Ok(None),
    }
}

/// Walks a chunked body starting at `at`, appending its data to `sink` if given;
/// returns where it ends, or `None` while it is incomplete.
fn walk_chunks(buf: &[u8], mut at: usize, mut sink: Option<&mut Vec<u8>>) -> Result<Option<usize>> {
    loop {
        let Some(line_len) = find_crlf(&buf[at..]) else {
            return Ok(None);
        };
        let line = &buf[at..at + line_len];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .with_context(|| format!("malformed chunk size line {:?}", String::from_utf8_lossy(line)))?;
        at += line_len + 2;
        if size == 0 {
            // Trailer fields, if any, then the blank line that ends the body.
            loop {
                let Some(len) = find_crlf(&buf[at..]) else {
                    return Ok(None);
                };
                at += len + 2;
                if len == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        ensure!(&buf[at + size..at + size + 2] == b"\r\n", "chunk of {size} bytes is not followed by CRLF");
        if let Some(sink) = sink.as_deref_mut() {
            sink.extend_from_slice(&buf[at..at + size]);
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_owned()
}

/// Sends one request on a fresh connection and returns the status and body.
/// For setup and checks only: it is not timed and not lean.
fn call(socket: &Path, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<(u16, Vec<u8>)> {
    let exchange = || -> Result<(u16, Vec<u8>)> {
        let mut stream = StdUnixStream::connect(socket).context("failed to connect")?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).context("failed to send the request")?;
        // `Connection: close`: the server ends the connection after its answer.
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).context("failed to read the response")?;
        let head = parse_head(&buf)?.context("connection closed inside the response head")?;
        let body = match head.framing {
            Framing::Empty => Vec::new(),
            Framing::Length(n) => buf
                .get(head.len..head.len + n)
                .context("connection closed inside the response body")?
                .to_vec(),
            Framing::Chunked => {
                let mut data = Vec::new();
                walk_chunks(&buf, head.len, Some(&mut data))?
                    .context("connection closed inside the chunked response body")?;
                data
            }
            Framing::UntilClose => buf[head.len..].to_vec(),
        };
        Ok((head.status, body))
    };
    exchange().with_context(|| format!("{method} {path} on {}", socket.display()))
}

/// [`call`], failing unless the status is one of `expected`.
fn call_ok(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    expected: &[u16],
) -> Result<Vec<u8>> {
    let (status, body) = call(socket, method, path, body)?;
    ensure!(
        expected.contains(&status),
        "{method} {path} on {} answered {status}: {}",
        socket.display(),
        snippet(&body)
    );
    Ok(body)
}

/// A keep-alive connection carrying one request at a time.
struct KeepAlive {
    stream: UnixStream,
    buf: Vec<u8>,
    filled: usize,
}

impl KeepAlive {
    async fn connect(socket: &Path) -> Result<Self> {
        // A full accept backlog (socat listens with 5) fails a Unix connect with
        // EAGAIN rather than queueing it; the connections of a cell all open at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match UnixStream::connect(socket).await {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                result => {
                    break result.with_context(|| format!("failed to connect to {}", socket.display()))?;
                }
            }
        };
        Ok(KeepAlive { stream, buf: vec![0; 64 * 1024], filled: 0 })
    }

    /// Sends `request` and reads its whole response; returns the body's length.
    async fn exchange(&mut self, request: &[u8]) -> Result<usize> {
        self.stream.write_all(request).await.context("failed to send the request")?;
        loop {
            let received = &self.buf[..self.filled];
            if let Some(head) = parse_head(received)? {
                ensure!(head.status == 200, "answered {}: {}", head.status, snippet(&received[head.len..]));
                ensure!(
                    !head.close && head.framing != Framing::UntilClose,
                    "the server will close the connection; keep-alive numbers would be wrong"
                );
                if let Some(end) = body_end(received, &head)? {
                    let body = end - head.len;
                    self.buf.copy_within(end..self.filled, 0);
                    self.filled -= end;
                    return Ok(body);
                }
            }
            if self.filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self
                .stream
                .read(&mut self.buf[self.filled..])
                .await
                .context("failed to read the response")?;
            ensure!(n > 0, "connection closed before the response was complete");
            self.filled += n;
        }
    }
}

// ---------------------------------------------------------------------------
// The processes under test.

/// Where requests go.
struct Target {
    name: &'static str,
    socket: PathBuf,
    /// The proxy process whose CPU is sampled (none when going direct).
    pid: Option<u32>,
}

/// A proxy process under test, stopped when dropped.
struct Proxy {
    name: &'static str,
    socket: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Proxy {
    /// Starts this crate's release binary in front of the daemon.
    fn execgate(dir: &Path, settings: &Settings) -> Result<Self> {
        let socket = dir.join("execgate.sock");
        let mut command = Command::new(env!("CARGO_BIN_EXE_execgate"));
        command
            .arg("serve")
            .arg("--listen")
            .arg(&socket)
            .arg("--upstream")
            .arg(&settings.upstream)
            // Sessions are recorded as in production (default cap), into the run's own dir.
            .arg("--audit-dir")
            .arg(dir.join("audit"))
            .args(&settings.execgate_args);
        if std::env::var_os("EXECGATE_LOG").is_none() {
            command.env("EXECGATE_LOG", "warn");
        }
        Proxy::spawn("execgate", command, dir, socket)
    }

    /// Starts socat as a forking byte pipe in front of the daemon.
    fn socat(dir: &Path, upstream: &Path) -> Result<Self> {
        let socket = dir.join("socat.sock");
        let mut command = Command::new("socat");
        command
            .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
            .arg(format!("UNIX-CONNECT:{}", upstream.display()));
        Proxy::spawn("socat", command, dir, socket)
    }

    fn spawn(name: &'static str, mut command: Command, dir: &Path, socket: PathBuf) -> Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let log_file = File::create(&log).with_context(|| format!("failed to create {}", log.display()))?;
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_file).spawn().map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    anyhow!("{name} is not installed; scripts/testbed.sh installs it")
                }
                _ => anyhow!("failed to start {name}: {e}"),
            },
        )?;
        leftovers().pids.push(child.id());
        let mut proxy = Proxy { name, socket, log, child };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    /// Waits until the proxy answers `GET /_ping` with 200.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = anyhow!("no attempt made");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before answering on {}{}",
                    self.name,
                    self.socket.display(),
                    self.log_tail()
                );
            }
            if self.socket.exists() {
                match call_ok(&self.socket, "GET", "/_ping", None, &[200]) {
                    Ok(_) => return Ok(()),
                    Err(err) => last_error = err,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not answer GET /_ping on {} within {} s (last error: {last_error:#}){}",
            self.name,
            self.socket.display(),
            READY_TIMEOUT.as_secs(),
            self.log_tail()
        )
    }

    /// Fails if the proxy died during the run.
    fn ensure_alive(mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("{} exited ({status}) during the run{}", self.name, self.log_tail()),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        format!("; its log ends:\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
    }

    fn target(&self) -> Target {
        Target { name: self.name, socket: self.socket.clone(), pid: Some(self.child.id()) }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id();
        leftovers().pids.retain(|&p| p != pid);
    }
}

/// A private directory for the sockets and logs, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("execgate-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).with_context(|| format!("failed to create {}", path.display()))?;
        leftovers().dir = Some(path.clone());
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        leftovers().dir = None;
    }
}

/// The running container the stream test execs in, removed when dropped.
/// `AutoRemove` backs this up should the bench be killed outright.
struct Container {
    socket: PathBuf,
    name: String,
}

impl Container {
    fn start(socket: &Path, image: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("execgate-bench-{}-{nanos:x}", std::process::id());
        let config = json!({
            "Image": image,
            "Cmd": ["sleep", "3600"],
            "HostConfig": { "AutoRemove": true, "NetworkMode": "none" },
        });
        call_ok(socket, "POST", &format!("/containers/create?name={name}"), Some(&config), &[201])
            .context("failed to create the benchmark container")?;
        leftovers().container = Some((socket.to_owned(), name.clone()));
        let container = Container { socket: socket.to_owned(), name };
        call_ok(socket, "POST", &format!("/containers/{}/start", container.name), None, &[204])
            .context("failed to start the benchmark container")?;
        Ok(container)
    }
}

impl Container {
    /// The pid of the container's containerd-shim (the parent of its init
    /// process), when this process can see it.
    fn shim(&self, socket: &Path) -> Option<u32> {
        let inspect =
            call_ok(socket, "GET", &format!("/containers/{}/json", self.name), None, &[200]).ok()?;
        let inspect: serde_json::Value = serde_json::from_slice(&inspect).ok()?;
        let init = u32::try_from(inspect["State"]["Pid"].as_u64()?).ok()?;
        let shim = process_ticks(init)?.ppid;
        let comm = std::fs::read_to_string(format!("/proc/{shim}/comm")).ok()?;
        comm.starts_with("containerd-shim").then_some(shim)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        remove_container(&self.socket, &self.name);
        leftovers().container = None;
    }
}

fn remove_container(socket: &Path, name: &str) {
    // 404 and 409: AutoRemove got there first, or is busy doing so.
    match call(socket, "DELETE", &format!("/containers/{name}?force=1"), None) {
        Ok((204 | 404 | 409, _)) => {}
        Ok((status, body)) => eprintln!(
            "bench: warning: removing container {name} answered {status}: {}; \
             remove it with `docker rm -f {name}`",
            snippet(&body)
        ),
        Err(err) => eprintln!(
            "bench: warning: failed to remove container {name}: {err:#}; \
             remove it with `docker rm -f {name}`"
        ),
    }
}

/// On Ctrl-C, stops the proxies, removes the container and the temp directory,
/// and exits: the main thread may be deep in a measurement and not return soon.
fn clean_up_on_ctrl_c() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_err() {
            return;
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("bench: interrupted; cleaning up");
        let left = leftovers();
        for pid in &left.pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        if let Some((socket, name)) = &left.container {
            remove_container(socket, name);
        }
        if let Some(dir) = &left.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    });
}

// ---------------------------------------------------------------------------
// CPU accounting from /proc.

/// Who gets their CPU time sampled.
#[derive(Clone)]
struct Probe {
    client: u32,
    dockerd: Vec<u32>,
    /// The benchmark container's containerd-shim, parent of everything run in it.
    shim: Option<u32>,
    cpus: usize,
}

/// CPU counters at one instant, in clock ticks.
struct Snapshot {
    at: Instant,
    client: u64,
    /// The proxy process and its children, by pid.
    proxy: HashMap<u32, u64>,
    dockerd: u64,
    /// The container's shim and its children, by pid.
    container: HashMap<u32, u64>,
    machine_busy: u64,
    machine_total: u64,
}

/// CPU burned over an interval, in clock ticks, and how long the interval was.
#[derive(Debug, Default, Clone, Copy)]
struct CpuUse {
    wall: f64,
    client: u64,
    proxy: u64,
    dockerd: u64,
    container: u64,
    machine_busy: u64,
    machine_total: u64,
    cpus: usize,
}

impl CpuUse {
    fn between(a: &Snapshot, b: &Snapshot, cpus: usize) -> Self {
        CpuUse {
            wall: (b.at - a.at).as_secs_f64(),
            client: b.client.saturating_sub(a.client),
            proxy: tree_delta(&a.proxy, &b.proxy),
            dockerd: b.dockerd.saturating_sub(a.dockerd),
            container: tree_delta(&a.container, &b.container),
            machine_busy: b.machine_busy.saturating_sub(a.machine_busy),
            machine_total: b.machine_total.saturating_sub(a.machine_total),
            cpus,
        }
    }

    fn add(&mut self, other: &CpuUse) {
        self.wall += other.wall;
        self.client += other.client;
        self.proxy += other.proxy;
        self.dockerd += other.dockerd;
        self.container += other.container;
        self.machine_busy += other.machine_busy;
        self.machine_total += other.machine_total;
        self.cpus = other.cpus;
    }

    /// `ticks` as a percentage of one core over the interval.
    fn percent(&self, ticks: u64) -> f64 {
        if self.wall <= 0.0 {
            return 0.0;
        }
        ticks as f64 / USER_HZ / self.wall * 100.0
    }

    /// CPU the sampled processes do not account for (other work on the machine,
    /// interrupts), as a percentage of one core.
    fn other_percent(&self) -> f64 {
        let known = self.percent(self.client + self.proxy + self.dockerd + self.container);
        (self.machine_percent() - known).max(0.0)
    }

    /// Busy time of the whole machine, as a percentage of one core.
    fn machine_percent(&self) -> f64 {
        if self.machine_total == 0 {
            return 0.0;
        }
        self.machine_busy as f64 / self.machine_total as f64 * self.cpus as f64 * 100.0
    }

    /// `ticks` spread over `requests`, in µs each.
    fn micros_per(ticks: u64, requests: usize) -> f64 {
        if requests == 0 {
            return 0.0;
        }
        ticks as f64 / USER_HZ * 1e6 / requests as f64
    }
}

impl Probe {
    fn new(shim: Option<u32>) -> Self {
        Probe {
            client: std::process::id(),
            shim,
            dockerd: all_pids()
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim_end() == "dockerd")
                })
                .collect(),
            cpus: std::fs::read_to_string("/proc/stat")
                .map(|stat| {
                    stat.lines()
                        .filter(|l| {
                            l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                        })
                        .count()
                })
                .unwrap_or(1)
                .max(1),
        }
    }

    fn snapshot(&self, proxy: Option<u32>) -> Snapshot {
        let (machine_busy, machine_total) = machine_ticks().unwrap_or_default();
        Snapshot {
            at: Instant::now(),
            client: process_ticks(self.client).map_or(0, |t| t.own),
            proxy: proxy.map(|pid| tree_ticks(pid, false)).unwrap_or_default(),
            dockerd: self.dockerd.iter().filter_map(|&pid| process_ticks(pid)).map(|t| t.own).sum(),
            container: self.shim.map(|pid| tree_ticks(pid, true)).unwrap_or_default(),
            machine_busy,
            machine_total,
        }
    }

    /// Samples at `from` and at `to` on a thread of its own, so scanning `/proc`
    /// never stalls the load generator.
    fn sample_between(&self, proxy: Option<u32>, from: Instant, to: Instant) -> JoinHandle<CpuUse> {
        let probe = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(from.saturating_duration_since(Instant::now()));
            let a = probe.snapshot(proxy);
            std::thread::sleep(to.saturating_duration_since(Instant::now()));
            let b = probe.snapshot(proxy);
            CpuUse::between(&a, &b, probe.cpus)
        })
    }
}

/// One process's CPU counters from `/proc/PID/stat`.
struct Ticks {
    ppid: u32,
    /// utime + stime, all threads.
    own: u64,
    /// cutime + cstime: children it has waited for.
    reaped: u64,
}

fn process_ticks(pid: u32) -> Option<Ticks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Ticks {
        ppid: u32::try_from(field(1)?).ok()?,
        own: field(11)? + field(12)?,
        reaped: field(13)? + field(14)?,
    })
}

/// CPU of `root` and of its direct children, by pid. With `reaped`, the root
/// also carries the children it has waited for: the shim reaps the exec'd `dd`
/// (and `runc`) within a stream run. Not for socat, whose children of the
/// previous cell may be reaped inside the next one.
fn tree_ticks(root: u32, reaped: bool) -> HashMap<u32, u64> {
    let mut ticks: HashMap<u32, u64> = all_pids()
        .filter_map(|pid| Some((pid, process_ticks(pid)?)))
        .filter(|(_, t)| t.ppid == root)
        .map(|(pid, t)| (pid, t.own))
        .collect();
    if let Some(parent) = process_ticks(root) {
        ticks.insert(root, parent.own + if reaped { parent.reaped } else { 0 });
    }
    ticks
}

/// CPU burned between two samples of a process tree: only the processes alive
/// at the end count, each from its first sighting, because socat's children
/// come and go (and its reaping does not reach the parent's counters).
fn tree_delta(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> u64 {
    b.iter().map(|(pid, &end)| end.saturating_sub(a.get(pid).copied().unwrap_or(0))).sum()
}

fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// Busy and total ticks of all cores, from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let values: Vec<u64> =
        line.split_whitespace().skip(1).take(8).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

// ---------------------------------------------------------------------------
// The latency test.

/// One endpoint × connection count × target.
struct Cell {
    rate: f64,
    p50: f64,
    p99: f64,
    requests: usize,
    body: usize,
    cpu: CpuUse,
}

/// One endpoint × connection count, every target side by side.
struct Row {
    path: &'static str,
    conns: usize,
    cells: Vec<Cell>,
}

fn run_cell(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    path: &str,
    conns: usize,
    settings: &Settings,
    probe: &Probe,
) -> Result<Cell> {
    let request: Arc<[u8]> = format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").into_bytes().into();
    let measure_start = Instant::now() + settings.warmup;
    let end = measure_start + settings.measure;
    let sampler = probe.sample_between(target.pid, measure_start, end);
    let results = runtime.block_on(async {
        let mut tasks = JoinSet::new();
        for i in 0..conns {
            let socket = target.socket.clone();
            let request = request.clone();
            tasks.spawn(async move {
                drive(&socket, &request, measure_start, end).await.with_context(|| format!("connection {i}"))
            });
        }
        let mut results = Vec::with_capacity(conns);
        while let Some(joined) = tasks.join_next().await {
            results.push(joined.context("a load task panicked")??);
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    // The connections stay open until the last sample is taken: socat's
    // per-connection children vanish with them, and their CPU with them.
    let cpu = sampler.join().map_err(|_| anyhow!("the CPU sampling thread panicked"))?;

    let body = results.first().map_or(0, |r| r.body);
    let mut latencies: Vec<u64> = results.into_iter().flat_map(|r| r.latencies).collect();
    latencies.sort_unstable();
    ensure!(
        !latencies.is_empty(),
        "no request completed in the measured {} s",
        settings.measure.as_secs_f64()
    );
    Ok(Cell {
        rate: latencies.len() as f64 / settings.measure.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        requests: latencies.len(),
        body,
        cpu,
    })
}

/// What one connection of a cell measured.
struct Driven {
    /// Latencies (ns) of the requests completed in `[measure_start, end)`.
    latencies: Vec<u64>,
    /// Length of the last response body.
    body: usize,
    /// The connection itself, still open.
    _conn: KeepAlive,
}

/// Sends requests back to back on one keep-alive connection until `end`.
async fn drive(socket: &Path, request: &[u8], measure_start: Instant, end: Instant) -> Result<Driven> {
    let mut conn = KeepAlive::connect(socket).await?;
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut body = 0;
    loop {
        let sent = Instant::now();
        if sent >= end {
            return Ok(Driven { latencies, body, _conn: conn });
        }
        body = conn.exchange(request).await?;
        let done = Instant::now();
        if done >= measure_start && done < end {
            latencies.push((done - sent).as_nanos() as u64);
        }
    }
}

/// Nearest-rank percentile of sorted ns values, in µs.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

// ---------------------------------------------------------------------------
// The stream test.

/// All stream runs through one target.
struct Stream {
    name: &'static str,
    secs: Vec<f64>,
    cpu: CpuUse,
}

struct StreamRun {
    secs: f64,
    cpu: CpuUse,
}

/// Runs `dd` of `bytes` zeros in `container` with stdout attached, reads the
/// multiplexed stream to EOF and times it from the start request on.
fn stream_once(target: &Target, container: &str, bytes: u64, probe: &Probe) -> Result<StreamRun> {
    let create = json!({
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": false,
        // The default policy refuses root execs; uid 1000 is `app` in the test image.
        "User": "1000",
        "Cmd": ["dd", "if=/dev/zero", format!("bs={MIB}"), format!("count={}", bytes / MIB)],
    });
    let created =
        call_ok(&target.socket, "POST", &format!("/containers/{container}/exec"), Some(&create), &[201])?;
    let created: serde_json::Value =
        serde_json::from_slice(&created).context("unreadable exec create answer")?;
    let id = created["Id"].as_str().context("exec create answer has no Id")?.to_owned();

    let body = r#"{"Detach":false,"Tty":false}"#;
    let request = format!(
        "POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = StdUnixStream::connect(&target.socket)
        .with_context(|| format!("failed to connect to {}", target.socket.display()))?;
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut demux = Demux::default();

    let before = probe.snapshot(target.pid);
    let started = Instant::now();
    stream.write_all(request.as_bytes()).context("failed to send exec start")?;
    let mut filled = 0;
    let head = loop {
        let n = stream.read(&mut buf[filled..]).context("failed to read the exec start answer")?;
        ensure!(n > 0, "connection closed before the exec start answer");
        filled += n;
        if let Some(head) = parse_head(&buf[..filled])? {
            break head;
        }
        ensure!(filled < buf.len(), "exec start answer head is too large");
    };
    ensure!(
        head.status == 101,
        "exec start answered {} instead of 101 Switching Protocols: {}",
        head.status,
        snippet(&buf[head.len..filled])
    );
    demux.feed(&buf[head.len..filled])?;
    // Sampled once the last byte is in, while the proxy's side of the connection
    // (socat's forked child) still exists to be sampled.
    let mut after = None;
    loop {
        if after.is_none() && demux.stdout >= bytes {
            after = Some(probe.snapshot(target.pid));
        }
        let n = stream.read(&mut buf).context("failed to read the stream")?;
        if n == 0 {
            break;
        }
        demux.feed(&buf[..n])?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = after.unwrap_or_else(|| probe.snapshot(target.pid));

    ensure!(
        demux.stdout == bytes,
        "the exec streamed {} bytes of stdout, expected {bytes}; stderr: {:?}",
        demux.stdout,
        String::from_utf8_lossy(&demux.stderr)
    );
    let inspect = call_ok(&target.socket, "GET", &format!("/exec/{id}/json"), None, &[200])?;
    let inspect: serde_json::Value =
        serde_json::from_slice(&inspect).context("unreadable exec inspect answer")?;
    ensure!(
        inspect["ExitCode"] == 0,
        "the exec exited with {}; stderr: {:?}",
        inspect["ExitCode"],
        String::from_utf8_lossy(&demux.stderr)
    );
    Ok(StreamRun { secs, cpu: CpuUse::between(&before, &after, probe.cpus) })
}

/// What a benchmarked exec streamed: stdout counted, the start of stderr kept
/// for error messages.
#[derive(Default)]
struct Demux {
    frames: execgate::docker_stream::Demux,
    stdout: u64,
    /// The first KiB of stderr, for error messages.
    stderr: Vec<u8>,
}

impl Demux {
    fn feed(&mut self, data: &[u8]) -> Result<()> {
        use execgate::docker_stream::Stream;
        for (stream, part) in self.frames.feed(data) {
            match stream {
                Stream::Stdout => self.stdout += part.len() as u64,
                Stream::Stderr => {
                    let room = 1024usize.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&part[..part.len().min(room)]);
                }
                other => bail!("stream frame header names stream {}; is the exec a TTY?", other.id()),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The report.

fn micros(v: f64) -> String {
    if v >= 1000.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn mib_per_sec(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

fn bytes_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} B"),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn report(
    settings: &Settings,
    daemon: &(String, String),
    cpus: usize,
    rows: &[Row],
    streams: &[Stream],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## execgate proxy benchmark\n");
    let _ = writeln!(
        out,
        "dockerd {} (API {}), {cpus} CPUs; execgate {}; {} s per cell after {} s warm-up; \
         load generator: one tokio current_thread client, one request in flight per connection.\n",
        daemon.0,
        daemon.1,
        execgate_flags(settings),
        settings.measure.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );

    let _ = writeln!(out, "### Keep-alive requests (latency in µs)\n");
    let _ = writeln!(
        out,
        "| request | conns | direct req/s | p50 | p99 | execgate req/s | p50 | p99 | socat req/s | p50 | p99 | execgate +p50 | execgate/direct req/s |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        let _ = write!(out, "| GET {} | {} |", row.path, row.conns);
        for cell in &row.cells {
            let _ = write!(out, " {:.0} | {} | {} |", cell.rate, micros(cell.p50), micros(cell.p99));
        }
        let (direct, execgate) = (&row.cells[0], &row.cells[1]);
        let _ = writeln!(out, " {:+.1} | {:.2}× |", execgate.p50 - direct.p50, execgate.rate / direct.rate);
    }

    let _ = writeln!(out, "\n### CPU during those cells (% of one core; µs of CPU per request)\n");
    let _ = writeln!(
        out,
        "| request | conns | target | body B | client % | proxy % | proxy µs/req | dockerd % | dockerd µs/req | other % | machine busy % |"
    );
    let _ = writeln!(out, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut noisy = Vec::new();
    for row in rows {
        for (cell, name) in row.cells.iter().zip(["direct", "execgate", "socat"]) {
            let cpu = &cell.cpu;
            let proxy = if name == "direct" {
                ("-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("{:.0}", cpu.percent(cpu.proxy)),
                    format!("{:.1}", CpuUse::micros_per(cpu.proxy, cell.requests)),
                )
            };
            let _ = writeln!(
                out,
                "| GET {} | {} | {name} | {} | {:.0} | {} | {} | {:.0} | {:.1} | {:.0} | {:.0} |",
                row.path,
                row.conns,
                cell.body,
                cpu.percent(cpu.client),
                proxy.0,
                proxy.1,
                cpu.percent(cpu.dockerd),
                CpuUse::micros_per(cpu.dockerd, cell.requests),
                cpu.other_percent(),
                cpu.machine_percent()
            );
            if cpu.other_percent() > NOISY_OTHER_PERCENT {
                noisy.push(format!("GET {} x{} {name}", row.path, row.conns));
            }
        }
    }
    if !noisy.is_empty() {
        let _ = writeln!(
            out,
            "
**Warning:** something else used over {NOISY_OTHER_PERCENT:.0}% of a core during {}; \
             those numbers are noisy, re-run on a quiet machine.",
            noisy.join(", ")
        );
    }

    if let Some(direct) = streams.first() {
        let _ = writeln!(
            out,
            "\n### Streaming {} out of an exec (`dd if=/dev/zero bs={MIB} count={}`, raw stream after Upgrade: tcp)\n",
            bytes_text(settings.stream_bytes),
            settings.stream_bytes / MIB
        );
        let _ = writeln!(
            out,
            "| target | runs (s) | best MiB/s | median MiB/s | median vs direct | client % | proxy % | dockerd % | container % | other % | machine busy % |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let rates = |s: &Stream| -> Vec<f64> {
            s.secs.iter().map(|&t| mib_per_sec(settings.stream_bytes, t)).collect()
        };
        let best = |s: &Stream| rates(s).into_iter().fold(0.0, f64::max);
        let direct_median = median(&rates(direct));
        for stream in streams {
            let runs: Vec<String> = stream.secs.iter().map(|s| format!("{s:.2}")).collect();
            let proxy = if stream.name == "direct" {
                "-".to_owned()
            } else {
                format!("{:.0}", stream.cpu.percent(stream.cpu.proxy))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2}× | {:.0} | {proxy} | {:.0} | {:.0} | {:.0} | {:.0} |",
                stream.name,
                runs.join(", "),
                best(stream),
                median(&rates(stream)),
                median(&rates(stream)) / direct_median,
                stream.cpu.percent(stream.cpu.client),
                stream.cpu.percent(stream.cpu.dockerd),
                stream.cpu.percent(stream.cpu.container),
                stream.cpu.other_percent(),
                stream.cpu.machine_percent()
            );
        }
        let _ = writeln!(
            out,
            "\n\"container\" is the container's containerd-shim with what it runs (`runc`, `dd`); \
             \"other\" is CPU none of the sampled processes account for (other work on the machine)."
        );
        let noisy: Vec<&str> =
            streams.iter().filter(|s| s.cpu.other_percent() > NOISY_OTHER_PERCENT).map(|s| s.name).collect();
        if !noisy.is_empty() {
            let _ = writeln!(
                out,
                "\n**Warning:** something else used over {NOISY_OTHER_PERCENT:.0}% of a core while streaming via {}; \
                 those numbers are noisy, re-run on a quiet machine.",
                noisy.join(", ")
            );
        }
        if let Some(execgate) = streams.iter().find(|s| s.name == "execgate") {
            let _ = writeln!(
                out,
                "\nexecgate/direct stream throughput: best {:.2}×, median {:.2}×",
                best(execgate) / best(direct),
                median(&rates(execgate)) / direct_median
            );
        }
    }
    out
}
