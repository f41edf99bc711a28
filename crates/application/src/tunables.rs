//! [`Tunables`]: the numbers the use cases and the engine run with.

/// Tunables of the use cases and the engine (each one a setting of `sluice
/// serve` or `sluice worker`).
#[derive(Debug, Clone)]
pub struct Tunables {
    /// Lease length of extraction and partition claims, in ms.
    pub lease_ms: i64,
    /// Most rows per committed batch.
    pub batch_rows: usize,
    /// Most bytes of values per committed batch (bounds memory).
    pub batch_bytes: usize,
    /// How long a request waits for a connector's store (a dry run's listing,
    /// a touch-file check), in ms.
    pub source_timeout_ms: u64,
    /// First pause before re-reading after a source error, in ms (grows linearly).
    pub source_retry_ms: u64,
    /// How long an authenticated key is remembered without asking the store,
    /// in ms (0: ask every time). A key revoked through this process stops
    /// working at once; one revoked through another process within this time.
    pub auth_cache_ms: u64,
    /// Whether connectors may use the server's ambient cloud credentials
    /// (`SLUICE_ALLOW_AMBIENT_CREDENTIALS`); off by default, because they
    /// are the server's identity, not the connector's.
    pub allow_ambient_credentials: bool,
    /// Whether webhooks may target loopback, link-local and private
    /// addresses (`SLUICE_WEBHOOK_ALLOW_PRIVATE`); off by default, so that
    /// a subscription cannot probe the internal network.
    pub allow_private_webhooks: bool,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            batch_rows: 20_000,
            batch_bytes: 8 * 1024 * 1024,
            source_timeout_ms: 10_000,
            source_retry_ms: 500,
            auth_cache_ms: 2_000,
            allow_ambient_credentials: false,
            allow_private_webhooks: false,
        }
    }
}
