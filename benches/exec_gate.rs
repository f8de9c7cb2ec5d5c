//! Benchmark of the exec gate against a real Docker daemon: the time one policy
//! decision takes (default pack, measured inside execgate and logged as
//! `decision_us`), and the latency exec create adds through execgate — body
//! decoding, container lookup, user resolution from the container's rootfs and
//! the decision — side by side with the same request sent straight to the daemon.
//!
//! Every allowed create is first made durable in the audit log (an fsync), so
//! it is measured twice: with the audit directory on disk, and on tmpfs
//! (`/dev/shm`, where a sync costs nothing) to show what the gate itself adds.
//!
//! Run with `scripts/bench.sh` or `cargo bench --bench exec_gate` once
//! `scripts/testbed.sh` has run. `EXECGATE_BENCH_CREATES` sets the number of
//! creates per target (default 400); `EXECGATE_TEST_DOCKER_SOCK` the daemon
//! (default `/var/run/docker.sock`).

use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[path = "gate_common.rs"]
mod gate_common;
use gate_common::{IMAGE, daemon, exchange, percentile, start_gate};

fn run() -> Result<()> {
    let creates: usize =
        std::env::var("EXECGATE_BENCH_CREATES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let socket = daemon();
    UnixStream::connect(&socket)
        .with_context(|| format!("no Docker daemon at {socket}; run scripts/testbed.sh"))?;
    let name = format!("execgate-bench-create-{}", std::process::id());
    let status = Command::new("docker")
        .args([
            "-H",
            &format!("unix://{}", daemon()),
            "run",
            "-d",
            "--user",
            "app",
            "--name",
            &name,
            IMAGE,
            "sleep",
            "600",
        ])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("could not start the benchmark container");
    }
    println!("\nexec gate: {creates} exec creates per target, one keep-alive connection each, interleaved\n");
    println!("| measure | p50 | p99 |");
    println!("|---|---:|---:|");
    let mut result = measure(&name, creates, &std::env::temp_dir(), "audit on disk");
    if result.is_ok() && std::path::Path::new("/dev/shm").is_dir() {
        result = measure(&name, creates, std::path::Path::new("/dev/shm"), "audit on tmpfs");
    }
    let _ = Command::new("docker").args(["-H", &format!("unix://{}", daemon()), "rm", "-f", &name]).output();
    result
}

fn measure(container: &str, creates: usize, base: &std::path::Path, label: &str) -> Result<()> {
    let gate = start_gate(base, &[])?;
    let body = r#"{"User":"app","AttachStdout":true,"AttachStderr":true,"Cmd":["true"]}"#;
    let request = format!(
        "POST /v1.41/containers/{container}/exec HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut direct = UnixStream::connect(daemon())?;
    let mut through = UnixStream::connect(&gate.socket)?;
    let mut buf = Vec::new();
    let (mut t_direct, mut t_gate) = (Vec::with_capacity(creates), Vec::with_capacity(creates));
    for i in 0..creates + 20 {
        // Interleaved so drift in the daemon (its exec table grows) hits both alike.
        for (stream, times) in [(&mut direct, &mut t_direct), (&mut through, &mut t_gate)] {
            let started = Instant::now();
            let status = exchange(stream, request.as_bytes(), &mut buf)?;
            let took = started.elapsed();
            if status != 201 {
                bail!("exec create answered {status}: {}", String::from_utf8_lossy(&buf));
            }
            if i >= 20 {
                times.push(took);
            }
        }
    }
    t_direct.sort();
    t_gate.sort();
    let log = std::fs::read_to_string(&gate.log)?;
    let mut decisions: Vec<u64> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "exec allowed")
        .filter_map(|v| v["decision_us"].as_u64())
        .skip(20)
        .collect();
    decisions.sort_unstable();
    if decisions.is_empty() {
        bail!("execgate logged no decisions");
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pick = |v: &[u64], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "| policy decision, default pack ({label}) | {} µs | {} µs |",
        pick(&decisions, 0.5),
        pick(&decisions, 0.99)
    );
    let (d50, d99) = (us(percentile(&t_direct, 0.5)), us(percentile(&t_direct, 0.99)));
    let (g50, g99) = (us(percentile(&t_gate, 0.5)), us(percentile(&t_gate, 0.99)));
    println!("| exec create, direct | {d50:.0} µs | {d99:.0} µs |");
    println!("| exec create, through execgate ({label}) | {g50:.0} µs | {g99:.0} µs |");
    println!("| added by execgate ({label}) | {:.0} µs | {:.0} µs |", g50 - d50, g99 - d99);
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; nothing else to parse.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("exec_gate bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
