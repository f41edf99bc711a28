//! The `ObjectSource` contract suite of `sluice-application` on the adapter:
//! the same contracts the in-memory fake passes, over a local directory and
//! over a bucket on the S3 test server (listing, reads and errors go through
//! different `object_store` backends there). Small read chunks put chunk
//! boundaries inside every test file.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sluice_application::ports::ObjectSource;
use sluice_application::testing::contract::SourceFixture;

use crate::common::Fixture;

/// Read chunks of the contract runs.
const CHUNK: usize = 5;

#[async_trait]
impl SourceFixture for Fixture {
    fn source(&self) -> Arc<dyn ObjectSource> {
        Fixture::source(self)
    }

    /// Writes the object under exactly `key`, as a user's tools would: a
    /// file in the directory, or the S3 key itself (`ObjectPath::from`
    /// would percent-encode `%` and non-ASCII letters first).
    async fn put(&self, key: &str, content: Bytes) {
        if self.dir.is_some() {
            let path = self.root().join(key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, &content).expect("write file");
        } else {
            let path = ObjectPath::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
            self.raw
                .put(&path, PutPayload::from(content))
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e}"));
        }
    }
}

mod local {
    use super::*;

    sluice_application::source_contract_tests!(async {
        Fixture::local().with_factory(|f| f.with_read_chunk_bytes(CHUNK))
    });
}

mod s3 {
    use super::*;

    sluice_application::source_contract_tests!(async {
        Fixture::s3()
            .await
            .with_factory(|f| f.with_read_chunk_bytes(CHUNK))
    });
}
