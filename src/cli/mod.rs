//! The command line: flags (each also an `EXECGATE_*` variable) → a validated config.

mod serve_args;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::{audit, policy, serve};
use serve_args::ServeArgs;

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(name = "execgate", version, about = "A Docker API proxy that judges and records every exec")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Listen on a Unix socket and proxy the Docker API to the daemon.
    Serve(Box<ServeArgs>),
    /// Work with policies offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check and read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain, check recordings and anchors; exit non-zero on any break.
    Verify {
        /// The audit directory.
        dir: PathBuf,
        /// Anchor file to check against (default: DIR/anchors.jsonl when present).
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// List exec sessions, or print one session's records and transcript.
    Show {
        /// The audit directory.
        dir: PathBuf,
        /// Exec id (or a prefix of it).
        #[arg(long = "exec")]
        exec_id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Run the `test_*` rules of a policy set (default: the built-in pack).
    Test {
        /// Policy files or directories.
        paths: Vec<PathBuf>,
    },
    /// Evaluate one input document and print the decision as JSON.
    Eval {
        /// The input document (JSON), as execgate would build it.
        #[arg(long)]
        input: PathBuf,
        /// Policy files or directories (default: the built-in pack).
        #[arg(long)]
        policy: Vec<PathBuf>,
    },
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let args = *args;
            let _log_guard = args.init_logging()?;
            let workers = args.workers();
            let config = args.into_config()?;
            let runtime = build_runtime(workers)?;
            let served = runtime.block_on(serve::run(config));
            // Do not wait on blocking work a cut session may have left behind.
            runtime.shutdown_timeout(Duration::from_secs(1));
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Test { paths }) => policy_test(&paths),
        Command::Policy(PolicyCommand::Eval { input, policy }) => policy_eval(&input, &policy),
        Command::Audit(AuditCommand::Verify { dir, anchor }) => {
            match audit::verify::verify(&dir, anchor.as_deref()) {
                Ok(r) => {
                    println!(
                        "ok: {} records in {} files, {} recording hashes, {} anchors; head seq {} {}",
                        r.records, r.files, r.recordings, r.anchors, r.head_seq, r.head
                    );
                    for u in &r.unrecorded {
                        println!("UNRECORDED {} {} started at {}: {}", u.kind, u.exec_id, u.place, u.reason);
                    }
                    // The chain is intact, but not every session is on record.
                    Ok(if r.unrecorded.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
                }
                Err(broken) => {
                    println!("BROKEN at {}: {}", broken.place, broken.reason);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Audit(AuditCommand::Show { dir, exec_id }) => {
            let text = match exec_id {
                Some(id) => audit::show::session(&dir, &id)?,
                None => audit::show::list(&dir)?,
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn policy_test(paths: &[PathBuf]) -> Result<ExitCode> {
    let outcomes = policy::run_tests(paths)?;
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    for outcome in &outcomes {
        match &outcome.detail {
            None => println!("PASS {}", outcome.name),
            Some(detail) => println!("FAIL {}: {detail}", outcome.name),
        }
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if outcomes.is_empty() {
        bail!("no test_* rules found");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn policy_eval(input: &std::path::Path, paths: &[PathBuf]) -> Result<ExitCode> {
    let set = policy::PolicySet::load(paths)?;
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("failed to read input {}", input.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("input {} is not JSON", input.display()))?;
    let decision = set.decide(&value);
    let allowed = decision.allowed();
    let mut out = serde_json::to_value(&decision)?;
    out["allowed"] = serde_json::Value::Bool(allowed);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn build_runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build().context("failed to start the async runtime")
}
