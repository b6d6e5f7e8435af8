//! Placeholder until `ServerConnection` lands.
#![allow(missing_docs, dead_code)]
use mtproto_core::handshake::RsaPrivateKey;
use mtproto_core::transport::ProxySecret;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Default)]
pub struct ServerOptions {
    pub rsa_keys: Vec<RsaPrivateKey>,
    pub secrets: Vec<ProxySecret>,
    pub legacy_rsa: bool,
    pub max_conns: Option<u64>,
    pub seed: Option<[u8; 32]>,
}
#[derive(Default, Debug, Clone)]
pub struct ServerStats {
    pub connections: u64,
    pub failed: u64,
    pub handshakes: u64,
    pub requests: u64,
    pub cpu: Option<Duration>,
}
pub struct Server;
pub struct ServerHandle;
impl Server {
    pub fn bind(_a: &str, _o: ServerOptions) -> std::io::Result<Server> {
        Err(std::io::Error::other("server not built yet"))
    }
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Err(std::io::Error::other("x"))
    }
    pub fn spawn(self) -> ServerHandle {
        ServerHandle
    }
    pub fn run_foreground(self) -> ServerStats {
        ServerStats::default()
    }
}
impl ServerHandle {
    pub fn stop(self) -> ServerStats {
        ServerStats::default()
    }
}
