//! Reading a pipeline's source, as the engine and the use cases do: opening
//! the connector's source, the files a run reads, what their columns mean for
//! the schema, and the records themselves, decoded across files in bounded
//! memory.

mod files;
mod mapping;
mod open;
mod reader;
#[cfg(test)]
mod reader_properties;
mod selection;

pub use files::FileListing;
pub(crate) use files::{list_source_files, listed_files, no_files_message};
pub(crate) use mapping::{
    DRIFT_FAILURE_PREFIX, HeaderCheck, HeaderDrift, check_header, compiled_schema, mappings,
};
pub(crate) use open::{ConnectorSource, OpenError, open_connector, open_known};
pub use reader::{ReadItem, RecordMeta, RecordReader};
pub use selection::{ChooseError, ChosenFiles, choose_files};
