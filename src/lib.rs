//! execgate: a Docker API proxy on a Unix socket that judges and records every exec.
//!
//! The data path reads top to bottom: `serve` accepts a connection and reads
//! the caller's credentials (`peer`); `proxy` classifies each request
//! (`http::route`) and relays ordinary traffic over `daemon::upstream`
//! untouched; exec creates and starts go through the [`gate`] (decode →
//! context → [`policy`] → audit → permit), and a judged start becomes a
//! `session`, bridged through `tunnel` and recorded in the [`audit`] trail.
//! Errors become Docker-style answers in `http::error`. Every module uses only
//! modules later in that path; the binary is a thin shell over [`cli::run`].
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
