//! Use cases: what Sluice does, orchestrating the ports.

pub mod engine;
