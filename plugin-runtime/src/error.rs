//! The error a plugin method returns, and how it reaches the host.

use std::fmt;

/// A specialised `Result` for plugin methods.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is; decides the gRPC status code the host sees.
///
/// The Go SDK answers every failure of a plugin method with `Internal`; that is the default
/// here too. The other kinds exist for the cases the protocol gives a meaning to (the host
/// treats `Unimplemented` from `UpdateUser` during a rollback as success, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The method failed (gRPC `Internal`). The default.
    Internal,
    /// The request was malformed (gRPC `InvalidArgument`).
    InvalidArgument,
    /// The plugin does not implement this operation (gRPC `Unimplemented`).
    Unimplemented,
    /// The database could not be reached (gRPC `Unavailable`).
    Unavailable,
    /// The host's deadline passed (gRPC `DeadlineExceeded`).
    DeadlineExceeded,
    /// The host cancelled the call (gRPC `Cancelled`).
    Cancelled,
    /// The plugin is not in a state to serve the call, e.g. not initialized (gRPC
    /// `FailedPrecondition`).
    FailedPrecondition,
}

impl ErrorKind {
    pub(crate) fn code(self) -> tonic::Code {
        match self {
            ErrorKind::Internal => tonic::Code::Internal,
            ErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorKind::Unimplemented => tonic::Code::Unimplemented,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorKind::Cancelled => tonic::Code::Cancelled,
            ErrorKind::FailedPrecondition => tonic::Code::FailedPrecondition,
        }
    }
}

/// The error type of every plugin method.
///
/// Any `std::error::Error` converts into it with `?`, so a driver's error can be returned as
/// is; [`Error::new`] makes one from a message. Its `Display` is the message the host shows
/// the operator, so it must never contain a secret: the runtime sends exactly this text.
///
/// ```
/// use dbplugin::{Error, ErrorKind};
///
/// let e = Error::new("role \"app\" does not exist");
/// assert_eq!(e.kind(), ErrorKind::Internal);
/// let e = Error::invalid_argument("`connection_url` is required");
/// assert_eq!(e.to_string(), "`connection_url` is required");
/// let parsed: Result<u32, Error> = "x".parse::<u32>().map_err(Error::from);
/// assert!(parsed.is_err());
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A failure of the method (`Internal`) with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Internal, message)
    }

    /// An error of the given kind with this message.
    pub fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A malformed request (`InvalidArgument`): name the field, the expected form and what
    /// was received (never a secret value).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::InvalidArgument, message)
    }

    /// The operation is not supported by this plugin (`Unimplemented`).
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Unimplemented, message)
    }

    /// Wraps a cause, keeping it as [`Error::source`]; the message is the cause's `Display`.
    pub fn from_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// Puts `context: ` in front of the message.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message the host receives.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if this one wraps another.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The status sent to the host: the kind's code and `prefix: message`.
    pub(crate) fn into_status(self, prefix: &str) -> tonic::Status {
        let text = if prefix.is_empty() {
            self.message
        } else {
            format!("{prefix}: {}", self.message)
        };
        tonic::Status::new(self.kind.code(), text)
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(source: E) -> Self {
        Error::from_source(ErrorKind::Internal, source)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}
