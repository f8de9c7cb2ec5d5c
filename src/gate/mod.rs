//! The gate: every exec create and start is read as the daemon reads it
//! (`create`, `start`, `gojson`), placed in context (the container, who the
//! exec runs as: `users`, `user`, `identity`), judged by policy (`input`),
//! made durable in the audit log (`facts`) and — only if allowed — sealed into
//! a permit holding the canonical request that was judged (`permit`).
//!
//! Attaches go the same way (`attach`, `query`): PID 1 and the container in
//! context, the same policy, the same trail.
//!
//! The proxy can forward an exec or attach request only by way of a
//! [`CreatePermit`], [`StartPermit`] or [`AttachPermit`], and only this module
//! makes them.

mod attach;
pub mod container_body;
pub mod create;
mod exec;
mod facts;
pub mod gojson;
pub mod identity;
mod input;
mod judge;
mod memory;
mod permit;
mod query;
mod request;
mod rootfs;
pub mod start;
pub mod user;
mod users;

pub use attach::AttachGate;
pub use exec::ExecGate;
pub use permit::{AttachPermit, AttachPlan, CreatePermit, Judged, StartPermit, StartPlan, Stream};
pub use request::{RequestGate, RequestPermit};
pub use users::{UserLookup, UserRules};
