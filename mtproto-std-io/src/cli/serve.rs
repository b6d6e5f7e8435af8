//! `mtproto serve`: the test server.

use std::path::PathBuf;
use std::process::ExitCode;

use mtproto_core::handshake::RsaPrivateKey;

use super::{CliError, parse_secret};
use crate::server::{Server, ServerOptions};

/// Arguments of `mtproto serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:4430")]
    pub listen: String,
    /// The server's RSA private key: a text file with lines `n=HEX`, `e=HEX`, `d=HEX`, `p=HEX`,
    /// `q=HEX` (big-endian). Default: the built-in demo key (for tests only).
    #[arg(long)]
    pub rsa_key: Option<PathBuf>,
    /// An MTProxy secret to accept (hex; plain 16 bytes, `dd` + 16 bytes, or `ee` + 16 bytes +
    /// domain). Repeatable.
    #[arg(long)]
    pub secret: Vec<String>,
    /// Also accept the legacy RSA padding (SHA1 + data + random) older clients such as Telethon
    /// and Pyrogram use for p_q_inner_data.
    #[arg(long)]
    pub legacy_rsa: bool,
    /// Also accept `p_q_inner_data` without a dc (with the current RSA_PAD padding), as GramJS
    /// sends it. Implied by --legacy-rsa.
    #[arg(long)]
    pub accept_no_dc: bool,
    /// Exit after this many connections (tests).
    #[arg(long)]
    pub max_conns: Option<u64>,
    /// Seed the server's random source (tests).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also accept WebSocket upgrades (`ws://HOST:PORT/apiws`) on the --listen port.
    #[cfg(feature = "websocket")]
    #[arg(long)]
    pub ws: bool,
    /// Also serve the HTTP transport (`http://HOST:PORT/api`, `POST`) on the --listen port, and
    /// `https://` on the --wss-listen port.
    #[cfg(feature = "http")]
    #[arg(long)]
    pub http: bool,
    /// A second port for `wss://HOST:PORT/apiws` (TLS, then WebSocket; with --http also
    /// `https://HOST:PORT/api`).
    #[cfg(feature = "tls")]
    #[arg(long)]
    pub wss_listen: Option<String>,
    /// The wss certificate chain (PEM); default: a fresh self-signed certificate for
    /// localhost/127.0.0.1/::1, written to --tls-dir and printed.
    #[cfg(feature = "tls")]
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The wss private key (PEM), with --tls-cert.
    #[cfg(feature = "tls")]
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where the generated certificate goes (default: a directory in the system temp dir).
    #[cfg(feature = "tls")]
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
}

/// The `wss://` port's settings, and a line saying where the generated certificate is.
#[cfg(feature = "tls")]
fn wss_options(
    a: &ServeArgs,
) -> Result<(Option<crate::server::WssOptions>, Option<String>), CliError> {
    let Some(listen) = &a.wss_listen else {
        return Ok((None, None));
    };
    let mut note = None;
    let config = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            let (chain, key) = crate::tls::load_pem(cert, key)?;
            crate::tls::server_config(chain, key)?
        }
        _ => {
            let cert = crate::tls::SelfSigned::localhost()?;
            let dir = a.tls_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("mtproto-serve-{}", std::process::id()))
            });
            let path = cert.write_pem(&dir)?;
            note = Some(format!(
                "tls: self-signed certificate for localhost, 127.0.0.1, ::1: cert={} (trust it: mtproto ping --trust-cert {} wss://…)",
                path.display(),
                path.display()
            ));
            cert.server_config()?
        }
    };
    Ok((
        Some(crate::server::WssOptions {
            listen: listen.clone(),
            config,
        }),
        note,
    ))
}

fn read_rsa_key(path: &PathBuf) -> Result<RsaPrivateKey, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("--rsa-key {}: {e}", path.display())))?;
    let mut parts: [Option<Vec<u8>>; 5] = Default::default();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((name, hex)) = line.split_once('=') else {
            return super::fail(format!(
                "--rsa-key {}: expected NAME=HEX lines",
                path.display()
            ));
        };
        let idx = match name.trim() {
            "n" => 0,
            "e" => 1,
            "d" => 2,
            "p" => 3,
            "q" => 4,
            other => {
                return super::fail(format!(
                    "--rsa-key {}: unknown field {other}",
                    path.display()
                ));
            }
        };
        parts[idx] =
            Some(decode_hex(hex.trim()).ok_or_else(|| {
                CliError(format!("--rsa-key {}: {name} is not hex", path.display()))
            })?);
    }
    let [Some(n), Some(e), Some(d), Some(p), Some(q)] = parts else {
        return super::fail(format!(
            "--rsa-key {}: needs n, e, d, p and q",
            path.display()
        ));
    };
    RsaPrivateKey::from_be(&n, &e, &d, &p, &q)
        .map_err(|e| CliError(format!("--rsa-key {}: {e}", path.display())))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(super) fn run(a: ServeArgs) -> Result<ExitCode, CliError> {
    let rsa = match &a.rsa_key {
        Some(p) => read_rsa_key(p)?,
        None => RsaPrivateKey::demo(),
    };
    let secrets = a
        .secret
        .iter()
        .map(|s| parse_secret(s))
        .collect::<Result<Vec<_>, _>>()?;
    let public = rsa.public_key().clone();
    #[cfg(feature = "tls")]
    let (wss, tls_note) = wss_options(&a)?;
    let server = Server::bind(
        &a.listen,
        ServerOptions {
            rsa_keys: vec![rsa],
            secrets,
            legacy_rsa: a.legacy_rsa,
            accept_no_dc: a.accept_no_dc,
            max_conns: a.max_conns,
            seed: a.seed.map(|s| {
                let mut b = [0u8; 32];
                b[..8].copy_from_slice(&s.to_le_bytes());
                b
            }),
            key_store: None,
            print_events: true,
            #[cfg(feature = "websocket")]
            websocket: a.ws,
            #[cfg(feature = "tls")]
            wss,
            #[cfg(feature = "http")]
            http: a.http,
            #[cfg(feature = "http")]
            http_answer_delay: std::time::Duration::ZERO,
        },
    )
    .map_err(|e| CliError(format!("--listen {}: {e}", a.listen)))?;
    let addr = server.local_addr()?;
    // Machine-readable lines (tests/interop/run.sh reads them), then one line per event.
    println!(
        "rsa: fingerprint={:016x} n={} e=010001",
        public.fingerprint(),
        public
            .modulus_be()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!(
        "serving on {addr} (transports auto-detected; ping, test.echo; rpc_error 400 for anything else)"
    );
    #[cfg(feature = "websocket")]
    if a.ws {
        println!("websocket: ws://{addr}/apiws (obfuscated transports only)");
    }
    if let Some(tls) = server.tls_local_addr() {
        println!("websocket: wss://{tls}/apiws (obfuscated transports only)");
    }
    #[cfg(feature = "http")]
    if a.http {
        println!("http: http://{addr}/api");
        if let Some(tls) = server.tls_local_addr() {
            println!("http: https://{tls}/api");
        }
    }
    #[cfg(feature = "tls")]
    if let Some(note) = tls_note {
        println!("{note}");
    }
    let stats = server.run_foreground();
    println!(
        "stopped: {} connections, {} failed, {} keys created, {} requests",
        stats.connections, stats.failed, stats.handshakes, stats.requests
    );
    Ok(if stats.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
