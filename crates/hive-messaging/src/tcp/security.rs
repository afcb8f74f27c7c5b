//! Who may use a link: TLS (rustls, optionally with client certificates),
//! a pre-shared token proved with an HMAC handshake, both, or (only when
//! asked for explicitly) neither.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hive_types::{HiveError, HiveResult};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::wire::Control;

/// A byte stream a link runs over: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection, whatever its security.
pub(crate) type Stream = Pin<Box<dyn Io>>;

/// TLS settings: the server side (for [`TcpServer`](super::TcpServer)) and
/// the client side (for [`TcpLink::connect`](super::TcpLink::connect)).
/// Build the rustls configurations with the `ring` provider
/// (`rustls::crypto::ring::default_provider()`); for mutual TLS give the
/// server a client-certificate verifier and the client its certificate.
#[derive(Clone, Default)]
pub struct TlsConfig {
    server: Option<Arc<rustls::ServerConfig>>,
    client: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl TlsConfig {
    /// TLS for accepting links.
    pub fn server(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig {
            server: Some(config),
            client: None,
        }
    }

    /// TLS for connecting to a server that presents a certificate for
    /// `server_name` (a DNS name, or an IP address such as `127.0.0.1`).
    pub fn client(config: Arc<rustls::ClientConfig>, server_name: &str) -> HiveResult<Self> {
        TlsConfig::default().and_client(config, server_name)
    }

    /// Adds the client side (a process that both accepts and connects).
    pub fn and_client(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> HiveResult<Self> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| HiveError::config("server_name", "is not a DNS name or IP address"))?;
        self.client = Some((config, name));
        Ok(self)
    }

    /// Adds the server side.
    pub fn and_server(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.server = Some(config);
        self
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", &self.server.is_some())
            .field("client", &self.client.as_ref().map(|(_, n)| n.to_str()))
            .finish()
    }
}

/// A secret both ends of a link share: each proves it knows the token
/// without sending it (see `docs/wire-format.md`, "Link handshake").
#[derive(Clone)]
pub struct LinkToken(Arc<[u8]>);

impl LinkToken {
    /// A token of at least 16 bytes (use a random one).
    pub fn new(secret: impl AsRef<[u8]>) -> HiveResult<Self> {
        let secret = secret.as_ref();
        if secret.len() < 16 {
            return Err(HiveError::config(
                "token",
                "must be at least 16 bytes; use a random secret",
            ));
        }
        Ok(LinkToken(Arc::from(secret)))
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(..)")
    }
}

/// How a link is secured: TLS, a shared token, both, or (asked for by
/// name) neither. There is no default.
#[derive(Clone, Debug)]
pub struct Security {
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) token: Option<LinkToken>,
    /// Set only by [`Security::plaintext`].
    pub(crate) plaintext: bool,
}

impl Security {
    /// Links over TLS.
    pub fn tls(tls: TlsConfig) -> Self {
        Security {
            tls: Some(tls),
            token: None,
            plaintext: false,
        }
    }

    /// Links over plain TCP whose ends prove they share `token`.
    pub fn token(token: LinkToken) -> Self {
        Security {
            tls: None,
            token: Some(token),
            plaintext: false,
        }
    }

    /// Links over plain TCP, unauthenticated: for a trusted network or
    /// tests only. Anyone who can connect can send to any agent.
    pub fn plaintext() -> Self {
        Security {
            tls: None,
            token: None,
            plaintext: true,
        }
    }

    /// Also requires the shared `token` (on top of TLS, say).
    pub fn with_token(mut self, token: LinkToken) -> Self {
        self.token = Some(token);
        self
    }

    pub(crate) fn validate(&self) -> HiveResult<()> {
        if self.tls.is_none() && self.token.is_none() && !self.plaintext {
            return Err(HiveError::config(
                "security",
                "choose TcpConfig::tls(..), TcpConfig::token(..), or TcpConfig::plaintext() explicitly",
            ));
        }
        Ok(())
    }

    /// The client side of TLS over `tcp`, when configured.
    pub(crate) async fn connect(&self, tcp: TcpStream, within: Duration) -> HiveResult<Stream> {
        match &self.tls {
            None => Ok(Box::pin(tcp)),
            Some(tls) => {
                let Some((config, name)) = &tls.client else {
                    return Err(HiveError::config(
                        "tls",
                        "connecting needs the client side: TlsConfig::client(..)",
                    ));
                };
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream = tokio::time::timeout(within, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timeout("TLS handshake", within))??;
                Ok(Box::pin(stream))
            }
        }
    }

    /// The server side of TLS over `tcp`, when configured.
    pub(crate) async fn accept(&self, tcp: TcpStream, within: Duration) -> HiveResult<Stream> {
        match &self.tls {
            None => Ok(Box::pin(tcp)),
            Some(tls) => {
                let Some(config) = &tls.server else {
                    return Err(HiveError::config(
                        "tls",
                        "accepting needs the server side: TlsConfig::server(..)",
                    ));
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let stream = tokio::time::timeout(within, acceptor.accept(tcp))
                    .await
                    .map_err(|_| timeout("TLS handshake", within))??;
                Ok(Box::pin(stream))
            }
        }
    }
}

pub(crate) fn timeout(what: &'static str, after: Duration) -> HiveError {
    HiveError::Timeout { what, after }
}

/// Which end of the connection this side is; part of every proof, so a
/// proof one side makes can never be replayed to it (reflection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Connected,
    Accepted,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Connected => b"hive-link-proof/connected",
            Role::Accepted => b"hive-link-proof/accepted",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Connected => Role::Accepted,
            Role::Accepted => Role::Connected,
        }
    }
}

/// One side of the link handshake: hello (and, with a token, nonce and
/// proof) before anything else.
pub(crate) struct Handshake {
    token: Option<LinkToken>,
    role: Role,
    nonce: [u8; 16],
    peer_nonce: Option<[u8; 16]>,
    peer_hello: bool,
    verified: bool,
}

fn refused(why: &'static str) -> HiveError {
    HiveError::Io(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        why,
    ))
}

impl Handshake {
    pub(crate) fn new(token: Option<LinkToken>, role: Role) -> HiveResult<Self> {
        let mut nonce = [0u8; 16];
        if token.is_some() {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(
                |_| {
                    HiveError::Io(std::io::Error::other(
                        "no system randomness for the link nonce",
                    ))
                },
            )?;
        }
        Ok(Handshake {
            token,
            role,
            nonce,
            peer_nonce: None,
            peer_hello: false,
            verified: false,
        })
    }

    /// What this side says first.
    pub(crate) fn opening(&self) -> Vec<Control> {
        let mut c = vec![Control::Hello {
            version: crate::wire::VERSION,
        }];
        if self.token.is_some() {
            c.push(Control::Nonce(self.nonce));
        }
        c
    }

    /// Whether the peer is who it must be (and may send data).
    pub(crate) fn is_done(&self) -> bool {
        self.peer_hello && (self.token.is_none() || self.verified)
    }

    /// Takes a handshake record from the peer; returns the proof to send
    /// back, if one is due.
    pub(crate) fn on_record(&mut self, c: Control) -> HiveResult<Option<Control>> {
        match c {
            Control::Hello { version } => {
                if version < 1 {
                    return Err(hive_types::FrameError::UnsupportedVersion(version).into());
                }
                if self.peer_hello {
                    return Err(refused("the peer said hello twice"));
                }
                self.peer_hello = true;
                Ok(None)
            }
            Control::Nonce(peer) => {
                let Some(token) = &self.token else {
                    return Err(refused("the peer wants a token and this link has none"));
                };
                if self.peer_nonce.is_some() || peer == self.nonce {
                    return Err(refused("the peer's nonce is repeated"));
                }
                self.peer_nonce = Some(peer);
                Ok(Some(Control::Proof(proof(
                    token,
                    self.role,
                    &peer,
                    &self.nonce,
                ))))
            }
            Control::Proof(p) => {
                let (Some(token), Some(peer)) = (&self.token, self.peer_nonce) else {
                    return Err(refused("a proof came before the nonce, or without a token"));
                };
                let expected = proof(token, self.role.other(), &self.nonce, &peer);
                if !same(&expected, &p) {
                    return Err(refused("the peer does not know the link's token"));
                }
                self.verified = true;
                Ok(None)
            }
            _ => Err(refused("only the handshake may come before it completes")),
        }
    }
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first 16 bytes of HMAC-SHA256(token, role label || the prover's
/// peer's nonce || the prover's own nonce).
fn proof(token: &LinkToken, prover: Role, peer_nonce: &[u8; 16], own_nonce: &[u8; 16]) -> [u8; 16] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &token.0);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(prover.label());
    ctx.update(peer_nonce);
    ctx.update(own_nonce);
    let tag = ctx.sign();
    let mut out = [0u8; 16];
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (Handshake, Handshake) {
        (
            Handshake::new(Some(LinkToken::new(a).unwrap()), Role::Connected).unwrap(),
            Handshake::new(Some(LinkToken::new(b).unwrap()), Role::Accepted).unwrap(),
        )
    }

    /// Runs both sides to the end; returns each side's outcome.
    fn run(mut a: Handshake, mut b: Handshake) -> (HiveResult<bool>, HiveResult<bool>) {
        let (oa, ob) = (a.opening(), b.opening());
        let mut proofs_for_b = Vec::new();
        let mut proofs_for_a = Vec::new();
        for c in ob {
            match a.on_record(c) {
                Ok(Some(p)) => proofs_for_b.push(p),
                Ok(None) => {}
                Err(e) => return (Err(e), Ok(false)),
            }
        }
        for c in oa {
            match b.on_record(c) {
                Ok(Some(p)) => proofs_for_a.push(p),
                Ok(None) => {}
                Err(e) => return (Ok(false), Err(e)),
            }
        }
        let ra = proofs_for_a
            .into_iter()
            .try_for_each(|p| a.on_record(p).map(drop));
        let rb = proofs_for_b
            .into_iter()
            .try_for_each(|p| b.on_record(p).map(drop));
        (ra.map(|()| a.is_done()), rb.map(|()| b.is_done()))
    }

    #[test]
    fn both_sides_with_the_token_complete_a_wrong_token_is_refused() {
        let (a, b) = pair("0123456789abcdef-right", "0123456789abcdef-right");
        let (ra, rb) = run(a, b);
        assert!(ra.unwrap() && rb.unwrap());
        let (a, b) = pair("0123456789abcdef-right", "0123456789abcdef-wrong");
        let (ra, rb) = run(a, b);
        assert!(ra.is_err() && rb.is_err());
    }

    #[test]
    fn a_proof_cannot_be_reflected_back_to_its_maker() {
        let token = LinkToken::new("0123456789abcdef-right").unwrap();
        let mut victim = Handshake::new(Some(token.clone()), Role::Accepted).unwrap();
        let mut other = Handshake::new(Some(token), Role::Accepted).unwrap();
        let Control::Nonce(victim_nonce) = victim.opening()[1] else {
            panic!("no nonce")
        };
        // The attacker gets a second connection of the victim's kind to
        // answer the victim's own nonce...
        let Some(Control::Proof(p)) = other.on_record(Control::Nonce(victim_nonce)).unwrap() else {
            panic!("no proof")
        };
        // ...and replays that answer to the victim.
        let Control::Nonce(other_nonce) = other.opening()[1] else {
            panic!("no nonce")
        };
        victim.on_record(Control::Hello { version: 1 }).unwrap();
        victim.on_record(Control::Nonce(other_nonce)).unwrap();
        assert!(victim.on_record(Control::Proof(p)).is_err());
    }

    #[test]
    fn plaintext_is_only_ever_explicit() {
        let unset = Security {
            tls: None,
            token: None,
            plaintext: false,
        };
        assert!(unset.validate().is_err());
        assert!(LinkToken::new("short").is_err());
    }
}
