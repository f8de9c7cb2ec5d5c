//! The passwd/group reader (`gate::user`: `exec_user`, `resolve`,
//! `additional_groups`), byte-exact with runc 1.1.5's `libcontainer/user`;
//! the properties are `execgate_fuzz::checks::user`'s.
//!
//! Input (`arbitrary`): a user spec, `--group-add` arguments, a passwd and a
//! group file (either may be missing) each with an optional run of one byte
//! spliced in, and the fields of one more entry.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use execgate_fuzz::checks::{self, UserInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = UserInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    checks::user(&input);
});
