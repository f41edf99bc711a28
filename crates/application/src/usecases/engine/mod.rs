//! The run engine: extraction, partition loading, finalisation and the worker loop.

pub mod reader;

pub use reader::{ReadItem, RecordMeta, RecordReader};
