//! The `mtproto` command (feature `cli`): `demo`, `serve`, `ping`, `bench`. The root package's
//! `src/main.rs` calls [`main`].

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use mtproto_core::connection::{ConnectionConfig, TransportConfig};
use mtproto_core::handshake::{RsaKeySet, RsaPublicKey};
use mtproto_core::transport::{Framing, ProxySecret};

use crate::ClientConfig;
use crate::client::Client;

mod bench;
mod demo;
mod serve;

/// MTProto 2.0 from the command line: a demo of every transport, a test server, a ping for any
/// MTProto server (Telegram's DCs included), and a load test.
#[derive(Debug, Parser)]
#[command(name = "mtproto", version)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); logs go to stderr and never contain
    /// key material.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the built-in server on loopback and connect a client over every transport; prints
    /// a table (transport, handshake ms, RTT, echo MB/s, result). Exit status 1 if a row fails.
    Demo(demo::DemoArgs),
    /// Run the test server: any transport (auto-detected), `ping`, `test.echo`, rpc_error for
    /// anything else.
    Serve(serve::ServeArgs),
    /// Handshake and ping against any MTProto server, step by step.
    Ping(PingArgs),
    /// In-process load over loopback: N clients × M echo requests; requests/s, latency
    /// percentiles, server CPU per request.
    Bench(bench::BenchArgs),
}

/// A transport as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// Abridged framing.
    Abridged,
    /// Intermediate framing.
    Intermediate,
    /// Padded intermediate framing.
    Padded,
    /// Full framing (seq_no + CRC32).
    Full,
    /// Obfuscated2, abridged inside.
    ObfAbridged,
    /// Obfuscated2, intermediate inside.
    ObfIntermediate,
    /// Obfuscated2, padded intermediate inside.
    ObfPadded,
}

impl TransportArg {
    /// The core transport configuration (a secret implies obfuscation).
    pub fn config(self, secret: Option<ProxySecret>) -> TransportConfig {
        let (framing, obf) = match self {
            TransportArg::Abridged => (Framing::Abridged, false),
            TransportArg::Intermediate => (Framing::Intermediate, false),
            TransportArg::Padded => (Framing::PaddedIntermediate, false),
            TransportArg::Full => (Framing::Full, false),
            TransportArg::ObfAbridged => (Framing::Abridged, true),
            TransportArg::ObfIntermediate => (Framing::Intermediate, true),
            TransportArg::ObfPadded => (Framing::PaddedIntermediate, true),
        };
        let framing = match &secret {
            Some(s) if s.forces_padded() => Framing::PaddedIntermediate,
            _ => framing,
        };
        if obf || secret.is_some() {
            TransportConfig::obfuscated(framing, secret)
        } else {
            TransportConfig::plain(framing)
        }
    }
}

/// Arguments of `mtproto ping`.
#[derive(Debug, clap::Args)]
pub struct PingArgs {
    /// The server, `HOST:PORT` (e.g. 149.154.167.51:443 for Telegram's DC 2), or a WebSocket
    /// URL `ws://HOST:PORT/apiws` / `wss://HOST/apiws` (e.g. wss://venus.web.telegram.org/apiws),
    /// or an HTTP URL `http://HOST:PORT/api` / `https://HOST/api` (the HTTP transport).
    pub addr: String,
    /// The transport (over WebSocket always obfuscated: `intermediate` means
    /// `obf-intermediate`).
    #[arg(long, value_enum, default_value = "intermediate")]
    pub transport: TransportArg,
    /// For wss:// and https://: trust the certificate(s) in this PEM file (e.g. the one `mtproto serve
    /// --wss-listen` prints) instead of Mozilla's roots.
    #[arg(long)]
    pub trust_cert: Option<PathBuf>,
    /// The server's RSA public key (PEM); default: Telegram's production key (test key with
    /// --test-dc).
    #[arg(long)]
    pub rsa_pubkey: Option<PathBuf>,
    /// The data center id.
    #[arg(long, default_value_t = 2)]
    pub dc: i16,
    /// A test DC (dc id + 10000, Telegram's test key).
    #[arg(long)]
    pub test_dc: bool,
    /// An MTProxy secret (hex: 16 bytes, `dd` + 16 bytes, `ee` + 16 bytes + domain).
    #[arg(long)]
    pub secret: Option<String>,
    /// Keep the auth key in this file (created 0600 and locked; reused next time).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Use perfect forward secrecy (a temporary key bound to the permanent one).
    #[arg(long)]
    pub pfs: bool,
    /// Pings to send.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
}

/// A user-facing error: one line, no backtrace.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// `Err(CliError)` from a message.
pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, CliError> {
    Err(CliError(msg.into()))
}

/// Parses an MTProxy secret given in hex.
pub(crate) fn parse_secret(hex: &str) -> Result<ProxySecret, CliError> {
    ProxySecret::parse(hex).map_err(|e| CliError(format!("--secret {hex}: {e}")))
}

/// Runs the command line; returns the process exit status. `init_logging` installs a `tracing`
/// subscriber at the level `-v` flags ask for (the binary uses `tracing-subscriber`).
pub fn main(init_logging: impl FnOnce(tracing::Level)) -> ExitCode {
    let cli = Cli::parse();
    init_logging(match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    });
    let r = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Ping(a) => ping(a),
        Command::Bench(a) => bench::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn ping(a: PingArgs) -> Result<ExitCode, CliError> {
    let secret = a.secret.as_deref().map(parse_secret).transpose()?;
    let rsa = match &a.rsa_pubkey {
        Some(p) => {
            let pem = std::fs::read_to_string(p)
                .map_err(|e| CliError(format!("--rsa-pubkey {}: {e}", p.display())))?;
            let key = RsaPublicKey::from_pem(&pem)
                .map_err(|e| CliError(format!("--rsa-pubkey {}: {e}", p.display())))?;
            RsaKeySet::new().with(key)
        }
        None if a.test_dc => RsaKeySet::telegram_test(),
        None => RsaKeySet::telegram_production(),
    };
    let dc = if a.test_dc {
        a.dc.checked_add(10_000)
            .ok_or_else(|| CliError("--dc out of range".into()))?
    } else {
        a.dc
    };
    for k in rsa.iter() {
        println!("rsa key fingerprint {:016x}", k.fingerprint());
    }
    #[cfg(feature = "http")]
    let http = crate::http::HttpUrl::is_http(&a.addr);
    #[cfg(not(feature = "http"))]
    let http = false;
    let websocket = a.addr.contains("://") && !http;
    let mut transport = a.transport.config(secret);
    if http {
        // No framing and no obfuscation over HTTP: one packet per POST body.
        transport = mtproto_core::connection::TransportConfig::http();
    }
    if websocket {
        // `mtproto_transports.md`: "transport obfuscation is required" over WebSocket.
        transport.obfuscated = true;
    }
    let mut conn = ConnectionConfig::new(dc, transport, rsa);
    if a.pfs {
        conn.pfs = Some(Default::default());
    }
    let mut config = ClientConfig::new(a.addr.clone(), conn);
    config.key_file = a.key_file.clone();
    config.max_failures = Some(1);
    config.request_timeout = Duration::from_secs(15);
    if let Some(path) = &a.trust_cert {
        #[cfg(feature = "tls")]
        {
            let certs =
                crate::tls::load_certs(path).map_err(|e| CliError(format!("--trust-cert: {e}")))?;
            config.tls = Some(crate::tls::client_config(&certs)?);
        }
        #[cfg(not(feature = "tls"))]
        return fail(format!(
            "--trust-cert {}: built without the `tls` feature",
            path.display()
        ));
    }
    println!(
        "connecting to {} (dc {dc}, transport {}{}{})",
        a.addr,
        if http {
            "HTTP"
        } else if websocket {
            "WebSocket, obfuscated "
        } else {
            ""
        },
        if http {
            String::new()
        } else {
            format!("{:?}", a.transport)
        },
        if a.secret.is_some() {
            ", MTProxy secret"
        } else {
            ""
        }
    );
    let t = Instant::now();
    let mut client = Client::connect(config)?;
    let key = client.auth_key_id().unwrap_or(0);
    println!(
        "{} auth key {key:016x} in {} ms{}",
        if client.resumed_key() {
            "reusing saved"
        } else {
            "handshake done: new"
        },
        t.elapsed().as_millis(),
        if a.pfs {
            " (PFS: temporary key bound)"
        } else {
            ""
        }
    );
    println!(
        "server time offset {} s",
        client.connection().session().export().time_offset_secs
    );
    for i in 1..=a.count {
        let rtt = client
            .ping()
            .map_err(|e| CliError(format!("ping {i}: {e}")))?;
        println!("ping {i}: pong in {:.2} ms", rtt.as_secs_f64() * 1e3);
    }
    client.close();
    println!("ok");
    Ok(ExitCode::SUCCESS)
}
