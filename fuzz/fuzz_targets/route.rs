//! Route classification (`route::classify`) against the daemon's router; the
//! properties are `execgate_fuzz::checks::route`'s.
//!
//! Input: a method selector byte, then the raw request path (read as UTF-8
//! lossily: hyper hands execgate `str` paths).
#![no_main]

use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 6] = ["POST", "GET", "PUT", "DELETE", "HEAD", "post"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, path)) = data.split_first() else { return };
    let method = METHODS[selector as usize % METHODS.len()];
    execgate_fuzz::checks::route(method, &String::from_utf8_lossy(path));
});
