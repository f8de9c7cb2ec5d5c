//! The Docker daemon as execgate talks to it: connections (`upstream`), and
//! the lookups the gate and the sessions make (`inspect`, `archive`), each
//! read tolerantly, as the daemon's Go clients read them.

pub mod archive;
pub mod inspect;
pub mod upstream;
