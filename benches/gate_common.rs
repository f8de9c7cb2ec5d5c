//! What the gate benches share: the daemon under test, one keep-alive HTTP
//! exchange, percentiles, and an execgate started for a measurement.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The daemon under test: `EXECGATE_TEST_DOCKER_SOCK`, else the system one.
pub fn daemon() -> String {
    std::env::var("EXECGATE_TEST_DOCKER_SOCK")
        .ok()
        .map(|v| v.trim().trim_start_matches("unix://").to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned())
}
pub const IMAGE: &str = "execgate-test/busybox:latest";

/// One HTTP exchange on an open keep-alive connection; returns the status.
pub fn exchange(stream: &mut UnixStream, request: &[u8], buf: &mut Vec<u8>) -> Result<u16> {
    stream.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(buf)? {
            let len = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .context("response without Content-Length")?;
            if buf.len() >= head + len {
                return Ok(response.code.unwrap_or(0));
            }
        }
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub struct Gate {
    child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    dir: PathBuf,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn start_gate(base: &std::path::Path, extra: &[&str]) -> Result<Gate> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!("execgate-bench-gate-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("gate.sock");
    let log = dir.join("gate.log");
    let child = Command::new(env!("CARGO_BIN_EXE_execgate"))
        .args(["serve", "--log-format", "json", "--listen"])
        .arg(&socket)
        .arg("--upstream")
        .arg(daemon())
        .arg("--audit-dir")
        .arg(dir.join("audit"))
        .args(extra)
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("failed to start execgate")?;
    let gate = Gate { child, socket, log, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&gate.socket).is_err() {
        if Instant::now() > deadline {
            bail!("execgate did not listen within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(gate)
}
