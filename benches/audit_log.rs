//! Benchmark of the audit writer: fsync'd records per second, one writer at a
//! time (every record waits for its own sync) against many concurrent writers
//! (group commit: one sync covers everything queued meanwhile).
//!
//! `cargo bench --bench audit_log`; `EXECGATE_BENCH_SECS` sets seconds per row
//! (default 3). The log is written to a temporary directory on the disk that
//! holds `TMPDIR`.

use std::time::{Duration, Instant};

use execgate::audit::record::{Capped, Decided, Record, Verdict};
use execgate::audit::{AuditLog, LogConfig};
use serde_json::json;

fn config(dir: &std::path::Path) -> LogConfig {
    LogConfig {
        dir: dir.to_owned(),
        max_bytes: 1 << 30,
        retain: 10,
        anchor_file: dir.join("anchors.jsonl"),
        anchor_interval: Duration::from_secs(3600),
        syslog: false,
        syslog_socket: "/dev/log".into(),
    }
}

/// Appends from `writers` concurrent tasks for `secs`; returns records per second.
async fn run(log: &AuditLog, writers: usize, secs: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let record = Record::ExecCreate(Decided {
                    subject: execgate::audit::Subject::Exec { exec_id: None },
                    decision: Verdict::Allow,
                    reasons: Capped::new(Vec::<String>::new()),
                    warnings: None,
                    policy_hash: None,
                    facts: json!({
                        "writer": w, "n": n, "command": ["sh", "-c", "id"],
                        "container": { "id": "c0ffee", "name": "web" },
                    }),
                });
                if log.append(record).await.is_err() {
                    break;
                }
                n += 1;
            }
            n
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::var("EXECGATE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("execgate-bench-audit-{}", std::process::id()));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return eprintln!("audit_log bench: {err}"),
    };
    let opened = match AuditLog::open(config(&dir)) {
        Ok(opened) => opened,
        Err(err) => return eprintln!("audit_log bench: {err:#}"),
    };
    println!("\naudit writer: fsync'd records per second ({secs} s per row, {})\n", dir.display());
    println!("| concurrent writers | records/s | vs 1 writer |");
    println!("|---:|---:|---:|");
    let mut base = 0.0;
    for writers in [1, 8, 50, 200] {
        let rate = runtime.block_on(run(&opened.log, writers, secs));
        if writers == 1 {
            base = rate;
        }
        println!("| {writers} | {rate:.0} | {:.1}× |", rate / base.max(1.0));
    }
    drop(opened.log);
    let _ = opened.thread.join();
    let _ = std::fs::remove_dir_all(&dir);
}
