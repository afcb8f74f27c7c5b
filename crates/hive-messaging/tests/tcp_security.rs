//! Who may use a link: TLS with and without client certificates
//! (certificates made here with rcgen), the pre-shared token, and
//! plaintext only when asked for.
#![cfg(feature = "tcp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use hive_messaging::tcp::{LinkToken, Security, TcpConfig, TcpLink, TcpServer, TlsConfig};
use hive_messaging::Communicator;
use hive_types::{AgentId, Message};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use support::{comm, runtime, wait_for_route, wait_until};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test certificate authority and the certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Pki {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    /// A leaf certificate for 127.0.0.1, for a server or a client.
    fn leaf(
        &self,
        purpose: ExtendedKeyUsagePurpose,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "hive test");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    /// Server TLS; with `clients` set, it requires a certificate from them.
    fn server(&self, clients: Option<&Pki>) -> TlsConfig {
        let (chain, key) = self.leaf(ExtendedKeyUsagePurpose::ServerAuth);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let config = match clients {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        }
        .with_single_cert(chain, key)
        .unwrap();
        TlsConfig::server(Arc::new(config))
    }

    /// Client TLS trusting this authority; with `identity`, presenting a
    /// certificate it signed.
    fn client(&self, identity: Option<&Pki>) -> TlsConfig {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots());
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let (chain, key) = ca.leaf(ExtendedKeyUsagePurpose::ClientAuth);
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        TlsConfig::client(Arc::new(config), "127.0.0.1").unwrap()
    }
}

/// Serves `server_config`, connects with `client_config`: the link, or
/// the error `connect` gave, and the server.
fn link(
    server_config: TcpConfig,
    client_config: TcpConfig,
) -> (
    tokio::runtime::Runtime,
    Communicator,
    Communicator,
    TcpServer,
    hive_types::HiveResult<TcpLink>,
) {
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", server_config))
        .unwrap();
    let link = rt.block_on(TcpLink::connect(&a, server.local_addr(), client_config));
    (rt, a, b, server, link)
}

/// A message from `a` reaches an agent on `b`.
fn crosses(a: &Communicator, b: &Communicator) {
    let to = AgentId::random();
    let mut mailbox = b.register(to).unwrap();
    wait_for_route(a, to);
    a.sender()
        .send(Message::new(AgentId::random(), to, "over TLS"))
        .unwrap();
    let m = mailbox.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(m.payload.as_ref(), b"over TLS");
}

#[test]
fn tls_without_client_certificates_carries_messages() {
    let pki = Pki::new("hive test CA");
    let (rt, a, b, server, link) = link(
        TcpConfig::tls(pki.server(None)),
        TcpConfig::tls(pki.client(None)),
    );
    let link = link.unwrap();
    crosses(&a, &b);
    assert_eq!(rt.block_on(link.close()).error, None);
    rt.block_on(server.shutdown());
}

#[test]
fn mutual_tls_accepts_a_known_client_and_refuses_others() {
    let (servers, clients, strangers) = (
        Pki::new("hive server CA"),
        Pki::new("hive client CA"),
        Pki::new("someone else's CA"),
    );
    let server_config = TcpConfig::tls(servers.server(Some(&clients)));
    let (rt, a, b, server, link) = link(
        server_config.clone(),
        TcpConfig::tls(servers.client(Some(&clients))),
    );
    let link = link.unwrap();
    crosses(&a, &b);
    rt.block_on(link.close());
    // No certificate, then one from another authority: both refused.
    for identity in [None, Some(&strangers)] {
        let refused = rt.block_on(TcpLink::connect(
            &a,
            server.local_addr(),
            TcpConfig::tls(servers.client(identity)),
        ));
        assert!(
            refused.is_err(),
            "a client without a known certificate got in"
        );
    }
    wait_until("both refusals counted", || server.refused() >= 2);
    rt.block_on(server.shutdown());
}

#[test]
fn a_client_that_does_not_trust_the_server_does_not_connect() {
    let (real, other) = (Pki::new("hive test CA"), Pki::new("another CA"));
    let (_rt, _a, _b, _server, link) = link(
        TcpConfig::tls(real.server(None)),
        TcpConfig::tls(other.client(None)),
    );
    let err = link.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn tls_and_a_token_together() {
    let pki = Pki::new("hive test CA");
    let token = LinkToken::new("sixteen bytes or more, shared").unwrap();
    let (rt, a, b, server, link) = link(
        TcpConfig::with_security(Security::tls(pki.server(None)).with_token(token.clone())),
        TcpConfig::with_security(Security::tls(pki.client(None)).with_token(token)),
    );
    let link = link.unwrap();
    crosses(&a, &b);
    rt.block_on(link.close());
    rt.block_on(server.shutdown());
}

#[test]
fn the_right_token_links_and_a_wrong_one_is_refused() {
    let token = LinkToken::new("the swarm's shared secret").unwrap();
    let (rt, a, b, server, link) = link(TcpConfig::token(token.clone()), TcpConfig::token(token));
    let link = link.unwrap();
    crosses(&a, &b);
    rt.block_on(link.close());
    let wrong = LinkToken::new("not the swarm's shared secret").unwrap();
    let refused = rt.block_on(TcpLink::connect(
        &a,
        server.local_addr(),
        TcpConfig::token(wrong),
    ));
    assert!(refused.is_err());
    // A plaintext client to a token server proves nothing: refused too.
    let refused = rt.block_on(TcpLink::connect(
        &a,
        server.local_addr(),
        TcpConfig::plaintext(),
    ));
    assert!(refused.is_err());
    wait_until("both failed handshakes to be counted", || {
        server.refused() == 2
    });
    wait_until("the refused links to end", || server.link_count() == 0);
    rt.block_on(server.shutdown());
}

#[test]
fn a_token_shorter_than_sixteen_bytes_is_a_config_error() {
    assert!(LinkToken::new("short").is_err());
}
