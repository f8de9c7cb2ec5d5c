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
mod bounds;
pub mod cli;
pub mod daemon;
pub mod docker_stream;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
mod http;
mod listener;
mod logging;
mod peer;
pub mod policy;
mod proxy;
mod serve;
mod session;
mod tunnel;
