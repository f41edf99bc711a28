//! Code shared by the integration tests (`decoding` also by the fuzz
//! targets, which include it by path).

pub mod decoding;
pub mod inputs;
