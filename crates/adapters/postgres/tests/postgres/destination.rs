//! Destination tables.
