//! In-memory fakes and port contract suites.
