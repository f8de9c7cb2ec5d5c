//! Benchmark of the request gate against a real Docker daemon: the latency a
//! container create (`POST /containers/create`) takes straight to the daemon,
//! through execgate with the default pack (no request policy: the request is
//! relayed untouched), and through execgate with the lockdown pack (the body
//! read, decoded as the daemon decodes it, judged, and the allowed decision
//! fsync'd to the audit log before the create is forwarded). Interleaved, one
//! keep-alive connection per target.
//!
//! Run with `scripts/bench.sh` or `cargo bench --bench request_gate` once
//! `scripts/testbed.sh` has run. `EXECGATE_BENCH_CREATES` sets the number of
//! creates per target (default 200); `EXECGATE_TEST_DOCKER_SOCK` the daemon.

use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[path = "gate_common.rs"]
mod gate_common;
use gate_common::{IMAGE, daemon, exchange, percentile, start_gate};

/// The label that marks the benchmark's containers, for the clean-up.
const LABEL: &str = "execgate-bench-request";

fn run() -> Result<()> {
    let creates: usize =
        std::env::var("EXECGATE_BENCH_CREATES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let socket = daemon();
    UnixStream::connect(&socket)
        .with_context(|| format!("no Docker daemon at {socket}; run scripts/testbed.sh"))?;
    let temp = std::env::temp_dir();
    let default_pack = start_gate(&temp, &[])?;
    let lockdown =
        start_gate(&temp, &["--policy", "policies/execgate.rego", "--policy", "policies/examples/lockdown"])?;
    let body = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["true"],"Labels":{{"{LABEL}":"1"}},"HostConfig":{{"Binds":["/opt:/data:ro"]}}}}"#
    );
    let request = format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut targets = [
        ("direct", UnixStream::connect(&socket)?, Vec::with_capacity(creates)),
        ("execgate, default pack", UnixStream::connect(&default_pack.socket)?, Vec::with_capacity(creates)),
        ("execgate, lockdown pack", UnixStream::connect(&lockdown.socket)?, Vec::with_capacity(creates)),
    ];
    let mut buf = Vec::new();
    let result = (|| -> Result<()> {
        for i in 0..creates + 10 {
            for (_, stream, times) in targets.iter_mut() {
                let started = Instant::now();
                let status = exchange(stream, request.as_bytes(), &mut buf)?;
                let took = started.elapsed();
                if status != 201 {
                    bail!("container create answered {status}: {}", String::from_utf8_lossy(&buf));
                }
                if i >= 10 {
                    times.push(took);
                }
            }
        }
        Ok(())
    })();
    clean_up();
    result?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "\nrequest gate: {creates} container creates per target, one keep-alive connection each, interleaved\n"
    );
    println!("| target | p50 | p99 | added p50 | added p99 |");
    println!("|---|---:|---:|---:|---:|");
    for (_, _, times) in targets.iter_mut() {
        times.sort();
    }
    let (d50, d99) = (us(percentile(&targets[0].2, 0.5)), us(percentile(&targets[0].2, 0.99)));
    for (label, _, times) in &targets {
        let (p50, p99) = (us(percentile(times, 0.5)), us(percentile(times, 0.99)));
        println!("| {label} | {p50:.0} µs | {p99:.0} µs | {:+.0} µs | {:+.0} µs |", p50 - d50, p99 - d99);
    }
    // A create takes milliseconds in the daemon, with as much jitter; what the
    // gate adds is also measured inside it, from the request to its forward.
    let log = std::fs::read_to_string(&lockdown.log)?;
    let mut judged: Vec<u64> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request allowed" && v["route"] == "ContainerCreate")
        .filter_map(|v| v["judge_us"].as_u64())
        .skip(10)
        .collect();
    judged.sort_unstable();
    if judged.is_empty() {
        bail!("the lockdown gate logged no judged creates");
    }
    let pick = |p: f64| judged[((judged.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "\nlockdown pack, time in the request gate per create (read, decode, lookups, decision, fsync'd record): \
         p50 {} µs, p99 {} µs",
        pick(0.5),
        pick(0.99)
    );
    Ok(())
}

/// Removes every container the benchmark made.
fn clean_up() {
    let host = format!("unix://{}", daemon());
    let Ok(out) = Command::new("docker")
        .args(["-H", &host, "ps", "-aq", "--filter", &format!("label={LABEL}")])
        .output()
    else {
        return;
    };
    let ids: Vec<String> =
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
    for chunk in ids.chunks(100) {
        let _ = Command::new("docker").args(["-H", &host, "rm", "-f"]).args(chunk).output();
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; nothing else to parse.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("request_gate bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
