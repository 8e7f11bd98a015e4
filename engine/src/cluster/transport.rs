//! Why a request got no answer, told by its cause: the client wraps the
//! cause in several layers (`ServiceError: client error (Connect): …`),
//! and a person needs to know whether nothing listens, the server hung up,
//! the name does not resolve, or the TLS handshake failed, since each has
//! its own fix and only some pass by themselves.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use super::error_chain;

/// A failure below HTTP: no answer came back from the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Nothing listens at the address and port.
    Refused,
    /// The server reset or closed the connection before answering (it is
    /// restarting, or is not an API server).
    Closed,
    /// The network has no route to the host.
    NoRoute,
    /// The server's host name does not resolve.
    NameNotResolved {
        /// The host name.
        host: String,
    },
    /// No TCP connection and TLS handshake within this long.
    ConnectTimeout(Duration),
    /// Connected, but no answer within this long.
    NoResponse(Duration),
    /// A cause not recognized, as the client told it.
    Other(String),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Refused => write!(
                f,
                "connection refused (nothing listens at that address and port)"
            ),
            Transport::Closed => write!(
                f,
                "the server closed the connection without answering (reset or closed by peer)"
            ),
            Transport::NoRoute => write!(f, "no route to the host"),
            Transport::NameNotResolved { host } => {
                write!(f, "the host name `{host}` does not resolve")
            }
            Transport::ConnectTimeout(limit) => write!(
                f,
                "no connection within {} (nothing answers at that address)",
                humantime::format_duration(*limit)
            ),
            Transport::NoResponse(limit) => write!(
                f,
                "connected, but no response within {}",
                humantime::format_duration(*limit)
            ),
            Transport::Other(reason) => write!(f, "{reason}"),
        }
    }
}

/// What a failed request that got no HTTP answer comes down to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection failed: worth trying again, since each of these
    /// passes once a restarting server is back.
    Transport(Transport),
    /// The server's certificate is not one the kubeconfig trusts.
    NotTrusted(String),
    /// The TLS handshake failed for another reason: a server that does
    /// not speak TLS, or one that refused the client certificate.
    Handshake(String),
}

impl Failure {
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::NotTrusted(_) | Failure::Handshake(_) => false,
        }
    }
}

/// How the client was set up, for the words of a timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub connect: Duration,
    pub read: Option<Duration>,
}

/// Finds the cause of `error` in its chain of sources: the I/O error kind
/// where one is kept, else the words of the layer that knows. `host` is
/// the server's host name, for the message when it does not resolve.
pub(crate) fn diagnose(error: &(dyn Error + 'static), host: &str, limits: Limits) -> Failure {
    let chain = error_chain(error);
    let text = chain.to_lowercase();
    let kinds = io_kinds(error);
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let kind = |wanted: &[io::ErrorKind]| kinds.iter().any(|k| wanted.contains(k));

    // The TLS causes first: a bad certificate also ends the handshake, and
    // rustls reports both through I/O errors.
    if has(&["invalid peer certificate"]) {
        return Failure::NotTrusted(from(&chain, "invalid peer certificate"));
    }
    if has(&["received fatal alert"]) {
        return Failure::Handshake(from(&chain, "received fatal alert"));
    }
    if has(&[
        "corrupt message",
        "invalidcontenttype",
        "wrong version number",
    ]) {
        return Failure::Handshake(format!(
            "the server does not speak TLS at that address ({})",
            from(&chain, "received corrupt message")
        ));
    }
    if kind(&[io::ErrorKind::ConnectionRefused]) || has(&["connection refused"]) {
        return Failure::Transport(Transport::Refused);
    }
    if kind(&[
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::UnexpectedEof,
    ]) || has(&[
        "connection reset",
        "connection closed",
        "peer closed connection",
        "tls handshake eof",
        "broken pipe",
        "incomplete message",
        "unexpected eof",
    ]) {
        return Failure::Transport(Transport::Closed);
    }
    if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "nodename nor servname",
        "no address associated",
        "name resolution",
    ]) {
        return Failure::Transport(Transport::NameNotResolved {
            host: host.to_string(),
        });
    }
    if kind(&[
        io::ErrorKind::HostUnreachable,
        io::ErrorKind::NetworkUnreachable,
    ]) || has(&[
        "no route to host",
        "network is unreachable",
        "host is unreachable",
    ]) {
        return Failure::Transport(Transport::NoRoute);
    }
    if kind(&[io::ErrorKind::TimedOut]) || has(&["deadline has elapsed", "timed out"]) {
        // hyper-util names the layer that failed: `(Connect)` covers the
        // TCP connection and the TLS handshake.
        return Failure::Transport(match (text.contains("(connect)"), limits.read) {
            (false, Some(read)) => Transport::NoResponse(read),
            _ => Transport::ConnectTimeout(limits.connect),
        });
    }
    if has(&["certificate"]) {
        return Failure::NotTrusted(chain);
    }
    if has(&["tls", "handshake"]) {
        return Failure::Handshake(chain);
    }
    Failure::Transport(Transport::Other(chain))
}

/// The I/O error kinds anywhere in the chain.
fn io_kinds(error: &(dyn Error + 'static)) -> Vec<io::ErrorKind> {
    let mut kinds = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            kinds.push(io.kind());
        }
        next = e.source();
    }
    kinds
}

/// `chain` from the first occurrence of `word` (any case) on, without the
/// client's layers before it.
fn from(chain: &str, word: &str) -> String {
    match chain.to_lowercase().find(word) {
        Some(at) if chain.is_char_boundary(at) => chain[at..].to_string(),
        _ => chain.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        connect: Duration::from_secs(5),
        read: Some(Duration::from_secs(60)),
    };

    /// An error with a source, as the client's layers nest them.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn Error + Send + Sync>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn wrapped(inner: impl Error + Send + Sync + 'static) -> Layer {
        Layer(
            "ServiceError: client error (Connect)",
            Some(Box::new(inner)),
        )
    }

    fn text(message: &'static str) -> Failure {
        diagnose(&Layer(message, None), "api.example", LIMITS)
    }

    #[test]
    fn io_kinds_in_the_chain_name_the_cause() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, Transport::Refused),
            (io::ErrorKind::ConnectionReset, Transport::Closed),
            (io::ErrorKind::UnexpectedEof, Transport::Closed),
            (io::ErrorKind::HostUnreachable, Transport::NoRoute),
        ];
        for (kind, expected) in cases {
            let error = wrapped(io::Error::new(kind, "os error"));
            assert_eq!(
                diagnose(&error, "api.example", LIMITS),
                Failure::Transport(expected),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_handshake_the_server_cut_short_is_a_closed_connection_not_a_certificate() {
        for message in [
            "ServiceError: client error (Connect): tls handshake eof",
            "error reading a body from connection: peer closed connection without sending TLS close_notify",
            "ServiceError: client error (SendRequest): connection closed before message completed",
        ] {
            let failure = text(message);
            assert_eq!(failure, Failure::Transport(Transport::Closed), "{message}");
            assert!(failure.is_transient());
        }
    }

    #[test]
    fn certificate_and_handshake_failures_are_not_retried() {
        let untrusted =
            text("ServiceError: client error (Connect): invalid peer certificate: UnknownIssuer");
        assert_eq!(
            untrusted,
            Failure::NotTrusted("invalid peer certificate: UnknownIssuer".into())
        );
        let plain = text(
            "ServiceError: client error (Connect): received corrupt message of type InvalidContentType",
        );
        assert!(matches!(&plain, Failure::Handshake(why) if why.contains("does not speak TLS")));
        let alert = text("client error (Connect): received fatal alert: BadCertificate");
        assert_eq!(
            alert,
            Failure::Handshake("received fatal alert: BadCertificate".into())
        );
        for failure in [untrusted, plain, alert] {
            assert!(!failure.is_transient(), "{failure:?}");
        }
    }

    #[test]
    fn names_that_do_not_resolve_and_timeouts_say_so() {
        assert_eq!(
            text(
                "client error (Connect): dns error: failed to lookup address information: Name or service not known"
            ),
            Failure::Transport(Transport::NameNotResolved {
                host: "api.example".into()
            })
        );
        assert_eq!(
            text("ServiceError: client error (Connect): deadline has elapsed"),
            Failure::Transport(Transport::ConnectTimeout(Duration::from_secs(5)))
        );
        assert_eq!(
            text("ServiceError: client error (SendRequest): deadline has elapsed"),
            Failure::Transport(Transport::NoResponse(Duration::from_secs(60)))
        );
        assert_eq!(
            Transport::NameNotResolved {
                host: "api.example".into()
            }
            .to_string(),
            "the host name `api.example` does not resolve"
        );
    }
}
