//! The storage contract suite of `sluice-application`, on PostgreSQL: the same
//! contracts the in-memory fakes pass, each on a fresh database (dropped when
//! the contract ends).

sluice_application::store_contract_tests!(guarded: async { crate::support::fresh_store().await });
