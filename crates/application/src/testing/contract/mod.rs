//! Contract suites for the ports. Every implementation of a storage port runs
//! the store suite:
//!
//! ```text
//! sluice_application::store_contract_tests!(async { make_fresh_store().await });
//! ```
//!
//! The expression must evaluate to a fresh, empty store (its own database or
//! schema) implementing [`ContractStore`]. Each contract becomes one
//! `#[tokio::test(flavor = "multi_thread")]`. When the store needs something
//! kept alive beside it until the contract ends (its test database, dropped
//! afterwards), write `guarded:` before an expression that evaluates to the
//! pair `(store, guard)`:
//!
//! ```text
//! sluice_application::store_contract_tests!(guarded: async { (store, database) });
//! ```
//!
//! Every implementation of [`ObjectSource`](crate::ports::ObjectSource) runs
//! the [`source`] suite (`source_contract_tests!`).

mod fencing;
mod fixtures;
mod ledger;
mod loading;
mod metadata;
mod polling;
mod queue;
pub mod source;
mod webhooks;

pub use fencing::*;
pub use fixtures::{Fixture, T0, newest_run};
pub use ledger::*;
pub use loading::*;
pub use metadata::*;
pub use polling::*;
pub use queue::*;
pub use source::SourceFixture;
pub use webhooks::*;

use crate::ports::Store;
use crate::testing::DestinationProbe;

/// Everything a store implementation must provide to run the contracts.
pub trait ContractStore: Store + DestinationProbe {}

impl<T> ContractStore for T where T: Store + DestinationProbe {}

/// Generates one test per contract, each on a fresh store from `$make`.
#[macro_export]
macro_rules! store_contract_tests {
    (guarded: $make:expr) => {
        $crate::store_contract_tests!(@tests $make;
            api_keys_round_trip,
            connectors_round_trip,
            pipelines_round_trip,
            one_active_run_per_pipeline,
            runs_are_listed_newest_first_and_scoped_to_their_pipeline,
            cancel_is_a_checked_transition,
            extraction_is_claimed_once_and_fenced,
            partition_claims_are_exclusive_under_concurrency,
            expired_partition_lease_is_reclaimed_after_its_checkpoint,
            renew_and_release_respect_the_token,
            append_without_keys_commits_rows_errors_and_checkpoint_atomically,
            append_with_keys_keeps_the_first_occurrence_whatever_the_commit_order,
            upsert_keeps_the_last_occurrence_whatever_the_commit_order,
            replace_swaps_in_only_on_success,
            error_values_keep_their_text,
            finalize_sets_the_terminal_status_once,
            fail_run_stops_every_partition,
            retry_copies_checkpoints_and_rows_to_revisit,
            retry_revisits_and_resumes_to_completion,
            writes_after_the_run_stopped_are_fenced,
            a_row_the_destination_refuses_is_a_destination_error,
            polling_checks_are_claimed_once_per_interval,
            polled_runs_start_once_per_etag,
            scheduled_runs_start_once_per_tick,
            batch_commits_count_rows_per_file_and_finalize_fills_the_ledger,
            a_failed_run_leaves_the_ledger_alone,
            the_ledger_lists_newest_first_and_forgets,
            a_resumable_retry_takes_over_per_file_counters,
            webhooks_round_trip,
            run_transitions_write_one_event_per_subscription,
            errors_exceeded_is_written_with_its_threshold,
            events_are_leased_retried_and_redelivered,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::testing::contract::$name(std::sync::Arc::new(store)).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::store_contract_tests!(guarded: async { ($make.await, ()) });
    };
}
