//! Reading a pipeline's source, as the engine and the dry run both do: the
//! files a run reads, what their columns mean for the schema, and the
//! records themselves, decoded across files in bounded memory.

mod files;
mod mapping;
mod reader;
mod selection;

pub(crate) use files::{list_source_files, listed_files};
pub(crate) use mapping::{HeaderCheck, check_header, mappings, schema_with_required_keys};
pub use reader::{ReadItem, RecordMeta, RecordReader};
pub(crate) use selection::{ChosenFiles, choose_files};
