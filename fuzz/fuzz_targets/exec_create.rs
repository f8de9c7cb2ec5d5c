//! The Go-exact exec create decoder (`ExecConfig::decode`) against the
//! reference decoder; the properties are `execgate_fuzz::checks::create`'s.
//!
//! Input: the request body, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| execgate_fuzz::checks::create(body));
