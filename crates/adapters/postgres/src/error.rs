//! Translation of driver errors into [`StoreError`] at the adapter boundary.
//!
//! Callers (and through them API users) only ever see short, fixed messages;
//! the driver's own text, which may quote SQL or values, goes to the log.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sluice_application::ports::{CommitError, StoreError};
use tokio_postgres::error::SqlState;

/// An error inside the adapter, before translation.
#[derive(Debug)]
pub(crate) enum DbError {
    /// A fenced write found that its claim no longer holds.
    Fenced(&'static str),
    /// Already a port error (a missing entity, a state that forbids it, ...).
    Store(StoreError),
    /// From diesel / diesel-async (metadata queries).
    Diesel(DieselError),
    /// From tokio-postgres (COPY transactions).
    Pg(tokio_postgres::Error),
    /// No pooled connection could be had.
    Pool(String),
    /// A `replace` run's new contents cannot take the destination's place
    /// (something attached to the table cannot be carried over): the run
    /// must fail with this reason, in plain words, and the table stays as it was.
    SwapRefused(String),
}

pub(crate) type DbResult<T> = Result<T, DbError>;

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        Self::Diesel(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for DbError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        Self::Pool(e.to_string())
    }
}

impl From<deadpool::managed::PoolError<tokio_postgres::Error>> for DbError {
    fn from(e: deadpool::managed::PoolError<tokio_postgres::Error>) -> Self {
        Self::Pool(e.to_string())
    }
}

impl DbError {
    /// True for a deadlock or serialization failure: the whole transaction
    /// may simply be run again.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Pg(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
            ),
            Self::Diesel(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _,
            )) => true,
            Self::Diesel(DieselError::DatabaseError(_, info)) => {
                info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }

    /// The SQLSTATE of a tokio-postgres error, if it is one.
    pub(crate) fn sql_state(&self) -> Option<&SqlState> {
        match self {
            Self::Pg(e) => e.code(),
            _ => None,
        }
    }

    /// Translates into a port error whose message is safe to show; `what`
    /// names the operation in the log line.
    pub(crate) fn into_store(self, what: &'static str) -> StoreError {
        match self {
            Self::Fenced(why) => {
                tracing::error!(operation = what, why, "a fence outside a fenced write");
                StoreError::Internal("database error".into())
            }
            Self::Store(e) => e,
            Self::Pool(detail) => {
                tracing::warn!(operation = what, error = %detail, "no database connection");
                StoreError::Unavailable("database unavailable".into())
            }
            Self::Diesel(e) => from_diesel(e, what),
            Self::Pg(e) => from_pg(&e, what),
            Self::SwapRefused(reason) => StoreError::Unprocessable(reason),
        }
    }
}

fn from_diesel(e: DieselError, what: &'static str) -> StoreError {
    match &e {
        DieselError::NotFound => StoreError::NotFound {
            entity: "record",
            id: String::new(),
        },
        DieselError::DatabaseError(kind, info) => {
            let safe = match kind {
                DatabaseErrorKind::UniqueViolation => Some(StoreError::Conflict(
                    "a record with the same key already exists".into(),
                )),
                DatabaseErrorKind::ForeignKeyViolation => Some(StoreError::Conflict(
                    "the record is referenced by, or refers to, another record".into(),
                )),
                DatabaseErrorKind::SerializationFailure => {
                    Some(StoreError::Unavailable("concurrent update, retry".into()))
                }
                // diesel-async reports a connection lost mid-request (no
                // SQLSTATE: `connection closed`, `error communicating with
                // the server`) as UnableToSendCommand.
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    Some(StoreError::Unavailable("database unavailable".into()))
                }
                // The server going away or not yet back: 57P01-57P03 and
                // class 08, which diesel keeps only as the message.
                _ if is_server_unavailable(info.message()) => {
                    Some(StoreError::Unavailable("database unavailable".into()))
                }
                _ if info.message().contains("deadlock detected") => {
                    Some(StoreError::Unavailable("concurrent update, retry".into()))
                }
                _ if info.message().contains("statement timeout") => {
                    Some(StoreError::Unavailable("database timed out".into()))
                }
                _ => None,
            };
            tracing::warn!(operation = what, error = %info.message(), "database error");
            safe.unwrap_or_else(|| StoreError::Internal("database error".into()))
        }
        // A transaction whose connection broke cannot be rolled back on it:
        // the pool drops the connection, and the request may be tried again.
        DieselError::BrokenTransactionManager => {
            tracing::warn!(operation = what, error = %e, "database connection lost in a transaction");
            StoreError::Unavailable("database unavailable".into())
        }
        _ => {
            tracing::error!(operation = what, error = %e, "database error");
            StoreError::Internal("database error".into())
        }
    }
}

/// PostgreSQL's own words when it is shutting down, restarting or not yet
/// accepting connections (SQLSTATE 57P01, 57P02, 57P03), or when the
/// connection was lost; diesel keeps the message but not the SQLSTATE.
fn is_server_unavailable(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "terminating connection due to",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "connection closed",
        "server closed the connection unexpectedly",
    ];
    SIGNS.iter().any(|s| message.contains(s)) || message.starts_with("error communicating with")
}

fn from_pg(e: &tokio_postgres::Error, what: &'static str) -> StoreError {
    tracing::warn!(operation = what, error = %e, "database error");
    if e.is_closed() {
        return StoreError::Unavailable("database unavailable".into());
    }
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict("a record with the same key already exists".into())
        }
        Some(c) if *c == SqlState::QUERY_CANCELED => {
            StoreError::Unavailable("database timed out".into())
        }
        Some(c)
            if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            StoreError::Unavailable("concurrent update, retry".into())
        }
        Some(c) if c.code().starts_with("08") || *c == SqlState::ADMIN_SHUTDOWN => {
            StoreError::Unavailable("database unavailable".into())
        }
        _ => StoreError::Internal("database error".into()),
    }
}

impl DbError {
    /// Translates the error of a fenced write (a batch commit, the end of
    /// an extraction): the fence, a destination refusing a row, or
    /// [`DbError::into_store`] for anything else.
    pub(crate) fn into_commit(self, what: &'static str) -> CommitError {
        match self {
            Self::Fenced(why) => CommitError::Fenced(why.into()),
            Self::Pg(e) => match destination_problem(&e) {
                Some(message) => {
                    tracing::warn!(operation = what, error = %e, "the destination refused a row");
                    CommitError::Destination(message)
                }
                None => CommitError::Store(from_pg(&e, what)),
            },
            other => CommitError::Store(other.into_store(what)),
        }
    }
}

/// Longest part of PostgreSQL's detail kept in a refusal (it quotes values).
const MAX_DETAIL_CHARS: usize = 300;

/// What a destination table's refusal of a row says to the user: which
/// constraint (or column) of which table, and PostgreSQL's detail (e.g.
/// `Key (id)=(7) already exists.`). `None` when the error is not a refusal
/// by a table outside Sluice's own schema: a constraint violation (class
/// 23), a value the column cannot hold (class 22) or an exception raised by
/// a trigger of the table (P0001).
fn destination_refusal(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    if db.schema() == Some("sluice") {
        return None;
    }
    let code = db.code().code();
    let kind = match code {
        "23505" => "unique constraint",
        "23503" => "foreign key",
        "23514" => "check constraint",
        "23502" => "not-null constraint",
        "23P01" => "exclusion constraint",
        "P0001" => "trigger",
        c if c.starts_with("23") => "constraint",
        c if c.starts_with("22") => "column",
        _ => return None,
    };
    let name = match code {
        "23502" => db.column(),
        c if c.starts_with("22") => db.column(),
        _ => db.constraint(),
    }
    .map(|n| format!(" \"{n}\""))
    .unwrap_or_default();
    let table = db
        .table()
        .map(|t| format!(" of table \"{t}\""))
        .unwrap_or_default();
    let detail = match (code, db.detail()) {
        ("23505", Some(d)) => d.chars().take(MAX_DETAIL_CHARS).collect(),
        _ => db
            .message()
            .chars()
            .take(MAX_DETAIL_CHARS)
            .collect::<String>(),
    };
    Some(format!("{kind}{name}{table} refused a row: {detail}"))
}

impl DbError {
    /// Translates the error of preparing a destination table: what
    /// PostgreSQL says about the user's table (it is a view, a permission is
    /// missing, a column is in the way) is shown as it is, since no retry can
    /// cure it; anything else as [`DbError::into_store`].
    pub(crate) fn into_destination(self, what: &'static str) -> StoreError {
        match self {
            Self::Pg(e) => match destination_problem(&e) {
                Some(message) => {
                    tracing::warn!(operation = what, error = %e, "the destination cannot be used");
                    StoreError::Unprocessable(message)
                }
                None => from_pg(&e, what),
            },
            other => other.into_store(what),
        }
    }
}

/// What PostgreSQL refused about a destination table, in its own words (safe
/// to show: they name the user's objects, never connection details), with
/// its hint: a refused row ([`destination_refusal`]), or the table refusing
/// the load itself (class 42: not a table, permission denied, a column
/// missing; class 2B: dependent objects; class 0A: not supported). `None` for
/// errors about Sluice's own schema and for every other class (connection
/// loss, timeouts, deadlocks: a retry may cure those).
fn destination_problem(e: &tokio_postgres::Error) -> Option<String> {
    if let Some(refusal) = destination_refusal(e) {
        return Some(refusal);
    }
    let db = e.as_db_error()?;
    if db.schema() == Some("sluice") {
        return None;
    }
    let code = db.code().code();
    if !(code.starts_with("42") || code.starts_with("2B") || code.starts_with("0A")) {
        return None;
    }
    let mut message: String = db.message().chars().take(MAX_DETAIL_CHARS).collect();
    if let Some(detail) = db.detail() {
        message.push_str(": ");
        message.extend(detail.chars().take(MAX_DETAIL_CHARS));
    }
    let ours = match code {
        "42809" => {
            Some("the destination must be a table: choose another table, or drop this object")
        }
        "42501" => Some("the database user Sluice connects as needs this right on the destination"),
        _ => None,
    };
    if let Some(hint) = db.hint().or(ours) {
        message.push_str(" (");
        message.extend(hint.chars().take(MAX_DETAIL_CHARS));
        message.push(')');
    }
    Some(format!("PostgreSQL refused the load: {message}"))
}

/// Maps a port result's error with [`DbError::into_store`].
pub(crate) trait IntoStore<T> {
    /// See [`DbError::into_store`].
    fn store(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<DbError>> IntoStore<T> for Result<T, E> {
    fn store(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| e.into().into_store(what))
    }
}

/// Maps a fenced write's error with [`DbError::into_commit`].
pub(crate) trait IntoCommit<T> {
    /// See [`DbError::into_commit`].
    fn fenced(self, what: &'static str) -> Result<T, CommitError>;
}

impl<T, E: Into<DbError>> IntoCommit<T> for Result<T, E> {
    fn fenced(self, what: &'static str) -> Result<T, CommitError> {
        self.map_err(|e| e.into().into_commit(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diesel(kind: DatabaseErrorKind, message: &str) -> StoreError {
        DbError::Diesel(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
        .into_store("test")
    }

    #[test]
    fn a_lost_or_restarting_database_is_unavailable_on_the_diesel_path() {
        for (kind, message) in [
            (DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            (
                DatabaseErrorKind::UnableToSendCommand,
                "error communicating with the server: Connection reset by peer",
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is starting up",
            ),
            (DatabaseErrorKind::ClosedConnection, "closed"),
        ] {
            assert!(
                matches!(diesel(kind, message), StoreError::Unavailable(_)),
                "{message}"
            );
        }
        assert!(matches!(
            DbError::Diesel(DieselError::BrokenTransactionManager).into_store("test"),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn other_database_errors_stay_internal_with_a_fixed_message() {
        let e = diesel(
            DatabaseErrorKind::Unknown,
            "relation \"secret_table\" does not exist",
        );
        assert_eq!(e, StoreError::Internal("database error".into()));
    }
}
