//! execgate: a Docker API proxy on a Unix socket that judges and records every exec.
//!
//! The data path reads top to bottom: `listener` accepts a connection and reads
//! the caller's credentials, `proxy` classifies each request with `route`,
//! passes ordinary traffic to `upstream` untouched, sends exec requests
//! through `exec` (body → context → [`policy`] → permit) and bridges
//! hijacked streams through `tunnel`. Errors become Docker-style responses in
//! `error`. The binary is a thin shell over [`cli::run`].
#![forbid(unsafe_code)]

pub mod audit;
mod body;
mod bounds;
pub mod cli;
pub mod docker_stream;
mod error;
pub mod exec;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod listener;
mod logging;
mod peer;
pub mod policy;
mod proxy;
mod route;
mod serve;
mod session;
mod tunnel;
mod upstream;
