//! Two systems in one test joined by a plaintext TCP link on loopback (two
//! processes' worth), and an agent that answers every request.

use hive_core::messaging::tcp::{TcpConfig, TcpLink, TcpServer};
use hive_core::{Agent, Context, Message, SwarmSystem};

/// Answers every request with its payload.
pub(crate) struct Echo;

impl Agent for Echo {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let _ = ctx.reply(&message, message.payload.clone()).await;
    }
}

/// `there` serves on a free loopback port, `here` connects to it; the
/// link's tasks run on `here`'s runtime.
pub(crate) fn linked(here: &SwarmSystem, there: &SwarmSystem) -> (TcpServer, TcpLink) {
    let rt = here.runtime();
    let server = rt
        .block_on(TcpServer::bind(
            there.communicator(),
            "127.0.0.1:0",
            TcpConfig::plaintext(),
        ))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(
            here.communicator(),
            server.local_addr(),
            TcpConfig::plaintext(),
        ))
        .unwrap();
    (server, link)
}
