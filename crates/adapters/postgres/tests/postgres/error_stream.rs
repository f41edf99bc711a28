//! Streaming errors.
