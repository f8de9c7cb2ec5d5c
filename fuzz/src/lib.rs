//! Shared parts of the fuzz targets, also included by path by
//! `tests/properties.rs`: the reference models and the property checks.

pub mod checks;
pub mod reference;
