//! The Go-exact exec start decoder (`StartConfig::decode`) against the
//! reference decoder; the properties are `execgate_fuzz::checks::start`'s.
//!
//! Input: the request body, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| execgate_fuzz::checks::start(body));
