//! # sluice-object-store
//!
//! The object-source port ([`ObjectSource`], [`ObjectSourceFactory`]) on the
//! `object_store` crate: `s3` (AWS or any S3-compatible server), `gcs`,
//! `azure`, `local` (a directory jailed to its root) and `http` (read-only).
//!
//! What this adapter adds on top of `object_store`:
//! - **listing** with a prefix and a glob on the key relative to the prefix,
//!   touch file and directory markers left out, in lexical key order;
//! - **streaming reads** from a byte offset, with gzip (multi-member too)
//!   decompressed on the fly on a blocking thread of its own (so inflating
//!   overlaps with parsing), where the offset counts decompressed bytes;
//! - **a jail** for `local` connectors: keys with `..`, absolute paths and
//!   symbolic links leaving the root are refused, and the root itself must lie
//!   inside one of the directories the server allows (`SLUICE_LOCAL_ROOTS`);
//! - **plain-word errors** ([`SourceError`]) that never contain a credential,
//!   and `Debug` forms that never print one;
//! - **the connector test** ([`ObjectSource::check`]) within a timeout.
//!
//! [`ObjectSource`]: sluice_application::ports::ObjectSource
//! [`ObjectSourceFactory`]: sluice_application::ports::ObjectSourceFactory
//! [`ObjectSource::check`]: sluice_application::ports::ObjectSource::check
//! [`SourceError`]: sluice_application::ports::SourceError

mod credentials;
mod error;
mod factory;
mod gzip;
mod local;
mod paged;
mod secret;
mod settings;
mod source;

pub use credentials::AmbientEnvironment;
pub use factory::{
    DEFAULT_CHECK_TIMEOUT, DEFAULT_READ_CHUNK_BYTES, ObjectStoreSourceFactory, parse_local_roots,
};
pub use source::ObjectStoreSource;
