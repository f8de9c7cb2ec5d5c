//! The `execgate` command; everything lives in the library (`cli::run`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    match execgate::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("execgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
