//! HTTP as the Docker API speaks it: which route a request is (`route`), how
//! its body is framed and read (`framing`, `body`), and how a refusal becomes
//! a Docker-style answer (`error`); queries read as Go reads them (`query`);
//! which API operation a request is (`api`).

pub mod api;
pub mod body;
pub mod error;
pub mod framing;
pub mod query;
pub mod route;
