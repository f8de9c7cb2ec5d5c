//! The time records and file names carry.

use std::time::SystemTime;

/// RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}
