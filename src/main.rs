//! execgate: a Docker API proxy on a Unix socket that judges and records every exec.
//!
//! The data path reads top to bottom: [`listener`] accepts a connection and reads
//! the caller's credentials, [`proxy`] classifies each request with [`route`],
//! passes ordinary traffic to [`upstream`] untouched and bridges hijacked
//! streams through [`tunnel`]. Errors become Docker-style responses in [`error`].
#![forbid(unsafe_code)]

mod body;
mod cli;
mod error;
mod exec;
mod listener;
mod logging;
mod policy;
mod proxy;
mod route;
mod serve;
mod tunnel;
mod upstream;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("execgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
