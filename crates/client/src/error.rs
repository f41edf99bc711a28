//! What a call can fail with. An answer of the API that is an error is an
//! [`ApiError`], carrying the API's own `{error: {code, message, field}}`;
//! the other variants say the API could not be reached or answered
//! something this client does not understand.

use std::fmt;

use sluice_domain::role::Role;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400, 401, 403, 404, 409, 422, …).
    pub status: u16,
    /// The API's code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `unprocessable_entity`, …
    pub code: String,
    /// The API's message.
    pub message: String,
    /// The offending field of a 400, as a JSON path (`destination.table`).
    pub field: Option<String>,
    /// For a 403: the roles that may make this call.
    pub allowed_roles: Option<&'static [Role]>,
}

impl ApiError {
    /// True for a 404.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if let Some(roles) = self.allowed_roles.filter(|_| self.status == 403) {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let article = |w: &str| if w.starts_with(['a', 'e']) { "an" } else { "a" };
            let list = match names.as_slice() {
                [one] => format!("{} {one} key", article(one)),
                [first, .., last] => {
                    let rest = names[..names.len() - 1].join(", ");
                    format!("{} {rest} or {last} key", article(first))
                }
                [] => "a key with another role".to_owned(),
            };
            write!(f, " (this needs {list})")?;
        }
        Ok(())
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// The API answered with an error.
    Api(ApiError),
    /// The API could not be reached, or the connection broke.
    Transport {
        /// The URL called.
        url: String,
        /// What happened.
        source: reqwest::Error,
    },
    /// The API answered something this client does not understand (another
    /// server on that address, or a version with other shapes).
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// What could not be understood.
        detail: String,
    },
    /// The base URL is not an `http://` or `https://` URL.
    InvalidUrl(String),
    /// Writing an export failed.
    Io(std::io::Error),
}

impl Error {
    /// The API's error, when the API answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(e) => e.fmt(f),
            Self::Transport { url, source } => {
                // reqwest's outermost message says little; its causes say why.
                let mut text = source.to_string();
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                write!(f, "cannot reach {url}: {text}")
            }
            Self::Unexpected { status, detail } => {
                write!(f, "unexpected answer (HTTP {status}): {detail}")
            }
            Self::InvalidUrl(url) => write!(
                f,
                "`{url}` is not an API address such as http://127.0.0.1:8080"
            ),
            Self::Io(e) => write!(f, "cannot write: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport { source, .. } => Some(source),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(roles: &'static [Role]) -> ApiError {
        ApiError {
            status: 403,
            code: "forbidden".into(),
            message: "role viewer may not retry runs".into(),
            field: None,
            allowed_roles: Some(roles),
        }
    }

    #[test]
    fn a_403_says_which_roles_may() {
        assert_eq!(
            forbidden(&[Role::Admin, Role::Editor]).to_string(),
            "role viewer may not retry runs (this needs an admin or editor key)"
        );
        assert_eq!(
            forbidden(&[Role::Admin]).to_string(),
            "role viewer may not retry runs (this needs an admin key)"
        );
    }

    #[test]
    fn a_400_names_its_field() {
        let e = ApiError {
            status: 400,
            code: "bad_request".into(),
            message: "must be between 1 and 64".into(),
            field: Some("partitions".into()),
            allowed_roles: None,
        };
        assert_eq!(e.to_string(), "partitions: must be between 1 and 64");
    }
}
