//! The exec interception: reading exec bodies exactly as the daemon does.

pub mod gojson;
pub mod start;
