//! `mtproto demo`: the built-in server on a loopback port and a client over every transport.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mtproto_core::connection::client::PfsConfig;
use mtproto_core::connection::{ConnectionConfig, TransportConfig};
use mtproto_core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_core::transport::{Framing, ProxySecret};

use super::CliError;
use crate::client::Client;
use crate::server::{Server, ServerOptions};
use crate::{ClientConfig, echo};

/// Arguments of `mtproto demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Echo payload sizes, bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 1024, 65_536, 524_288])]
    pub sizes: Vec<usize>,
    /// Seed the random sources (clients and server) for a repeatable run.
    #[arg(long)]
    pub seed: Option<u64>,
}

struct Row {
    name: String,
    transport: TransportConfig,
    /// How the client reaches the server.
    via: Via,
    pfs: bool,
    /// Save the key to the demo's key file / reuse it.
    key: KeyUse,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Tcp,
    #[cfg(feature = "websocket")]
    Ws,
    #[cfg(feature = "tls")]
    Wss,
    #[cfg(feature = "http")]
    Http,
    #[cfg(all(feature = "http", feature = "tls"))]
    Https,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    Memory,
    Save,
    Reuse,
}

struct Outcome {
    handshake: Duration,
    rtt: Duration,
    mb_per_s: f64,
    note: String,
}

fn seed_bytes(seed: Option<u64>, row: usize) -> Option<[u8; 32]> {
    seed.map(|s| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&s.to_le_bytes());
        b[8..16].copy_from_slice(&(row as u64).to_le_bytes());
        b
    })
}

pub(super) fn run(a: DemoArgs) -> Result<ExitCode, CliError> {
    let secret = ProxySecret::plain(*b"mtproto-demo-key");
    let dd = ProxySecret::padded(*b"mtproto-demo-dd!");
    let ee = ProxySecret::fake_tls(*b"mtproto-demo-ee!", b"demo.example")
        .map_err(|e| CliError(e.to_string()))?;
    let rsa = RsaPrivateKey::demo();
    let pubkeys = RsaKeySet::new().with(rsa.public_key().clone());
    #[cfg(feature = "tls")]
    let cert = crate::tls::SelfSigned::localhost()?;
    let server = Server::bind(
        "127.0.0.1:0",
        ServerOptions {
            rsa_keys: vec![rsa],
            secrets: vec![secret.clone(), dd.clone(), ee.clone()],
            seed: seed_bytes(a.seed, 1000),
            #[cfg(feature = "websocket")]
            websocket: true,
            #[cfg(feature = "http")]
            http: true,
            #[cfg(feature = "tls")]
            wss: Some(crate::server::WssOptions {
                listen: "127.0.0.1:0".into(),
                config: cert.server_config()?,
            }),
            ..ServerOptions::default()
        },
    )?;
    let addr = server.local_addr()?.to_string();
    let tls_addr = server.tls_local_addr();
    let server = server.spawn();
    println!("server on {addr} (built-in demo RSA key, MTProxy secrets plain/dd/ee)");
    #[cfg(feature = "websocket")]
    println!("  and ws://{addr}/apiws");
    if let Some(t) = tls_addr {
        println!("  and wss://{t}/apiws (a fresh self-signed certificate the clients trust)");
    }
    #[cfg(feature = "http")]
    println!("  and http://{addr}/api");
    #[cfg(all(feature = "http", feature = "tls"))]
    if let Some(t) = tls_addr {
        println!("  and https://{t}/api");
    }

    use Framing::*;
    let plain = |f| TransportConfig::plain(f);
    let obf = |f| TransportConfig::obfuscated(f, None);
    #[allow(unused_mut)] // without the websocket features no rows are added below
    let mut rows = vec![
        Row {
            name: "abridged".into(),
            transport: plain(Abridged),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "intermediate".into(),
            transport: plain(Intermediate),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Save,
        },
        Row {
            name: "padded intermediate".into(),
            transport: plain(PaddedIntermediate),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "full".into(),
            transport: plain(Full),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "obfuscated abridged".into(),
            transport: obf(Abridged),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "obfuscated intermediate".into(),
            transport: obf(Intermediate),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "obfuscated padded".into(),
            transport: obf(PaddedIntermediate),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "MTProxy secret".into(),
            transport: TransportConfig::obfuscated(Intermediate, Some(secret)),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "MTProxy dd secret".into(),
            transport: TransportConfig::obfuscated(PaddedIntermediate, Some(dd)),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "MTProxy ee (fake TLS)".into(),
            transport: TransportConfig::obfuscated(PaddedIntermediate, Some(ee)),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Memory,
        },
        Row {
            name: "PFS (temporary key)".into(),
            transport: plain(Intermediate),
            via: Via::Tcp,
            pfs: true,
            key: KeyUse::Memory,
        },
        Row {
            name: "reconnect, saved key".into(),
            transport: obf(Intermediate),
            via: Via::Tcp,
            pfs: false,
            key: KeyUse::Reuse,
        },
    ];
    // WebSocket rows (obfuscation is mandatory inside), before the saved-key row that ends the
    // table.
    let last = rows.pop();
    #[cfg(feature = "websocket")]
    rows.push(Row {
        name: "ws (WebSocket)".into(),
        transport: obf(Intermediate),
        via: Via::Ws,
        pfs: false,
        key: KeyUse::Memory,
    });
    #[cfg(feature = "tls")]
    rows.push(Row {
        name: "wss (WebSocket over TLS)".into(),
        transport: obf(PaddedIntermediate),
        via: Via::Wss,
        pfs: false,
        key: KeyUse::Memory,
    });
    // HTTP rows (no framing, no obfuscation: one packet per POST body).
    #[cfg(feature = "http")]
    rows.push(Row {
        name: "http (POST /api, long poll)".into(),
        transport: TransportConfig::http(),
        via: Via::Http,
        pfs: false,
        key: KeyUse::Memory,
    });
    #[cfg(all(feature = "http", feature = "tls"))]
    rows.push(Row {
        name: "https (HTTP over TLS)".into(),
        transport: TransportConfig::http(),
        via: Via::Https,
        pfs: false,
        key: KeyUse::Memory,
    });
    rows.extend(last);
    let dir = std::env::temp_dir().join(format!("mtproto-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_path = dir.join("demo.key");

    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        bar.set_message(row.name.clone());
        let mut conn = ConnectionConfig::new(2, row.transport.clone(), pubkeys.clone());
        if row.pfs {
            conn.pfs = Some(PfsConfig::default());
        }
        let target = match row.via {
            Via::Tcp => addr.clone(),
            #[cfg(feature = "websocket")]
            Via::Ws => format!("ws://{addr}/apiws"),
            #[cfg(feature = "tls")]
            Via::Wss => match tls_addr {
                Some(t) => format!("wss://localhost:{}/apiws", t.port()),
                None => addr.clone(),
            },
            #[cfg(feature = "http")]
            Via::Http => format!("http://{addr}/api"),
            #[cfg(all(feature = "http", feature = "tls"))]
            Via::Https => match tls_addr {
                Some(t) => format!("https://localhost:{}/api", t.port()),
                None => addr.clone(),
            },
        };
        let mut config = ClientConfig::new(target, conn);
        #[cfg(feature = "tls")]
        if row.via == Via::Wss || {
            #[cfg(feature = "http")]
            let https = row.via == Via::Https;
            #[cfg(not(feature = "http"))]
            let https = false;
            https
        } {
            config.tls = Some(cert.client_config()?);
        }
        config.seed = seed_bytes(a.seed, i);
        config.max_failures = Some(2);
        if row.key != KeyUse::Memory {
            config.key_file = Some(key_path.clone());
        }
        let r = run_row(config, row.key, &a.sizes);
        results.push((row.name.clone(), r));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&dir);
    let stats = server.stop();

    println!();
    println!(
        "{:<26} {:>13} {:>10} {:>12}  result",
        "transport", "handshake ms", "RTT ms", "echo MB/s"
    );
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(o) => println!(
                "{name:<26} {:>13.1} {:>10.3} {:>12.1}  OK{}",
                o.handshake.as_secs_f64() * 1e3,
                o.rtt.as_secs_f64() * 1e3,
                o.mb_per_s,
                o.note
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "{name:<26} {:>13} {:>10} {:>12}  FAILED: {e}",
                    "-", "-", "-"
                );
            }
        }
    }
    println!();
    println!(
        "server: {} connections, {} keys created, {} requests answered",
        stats.connections, stats.handshakes, stats.requests
    );
    if failed == 0 {
        println!("all {} rows OK", results.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} rows FAILED", results.len());
        Ok(ExitCode::from(1))
    }
}

fn run_row(config: ClientConfig, key: KeyUse, sizes: &[usize]) -> Result<Outcome, String> {
    let t = Instant::now();
    let mut client = Client::connect(config).map_err(|e| e.to_string())?;
    let handshake = t.elapsed();
    let mut note = String::new();
    if key == KeyUse::Reuse {
        if !client.resumed_key() {
            return Err("the saved key was not reused".into());
        }
        note = format!(" (key {:016x} reused)", client.auth_key_id().unwrap_or(0));
    }
    let mut rtts = Vec::new();
    for _ in 0..3 {
        rtts.push(client.ping().map_err(|e| format!("ping: {e}"))?);
    }
    rtts.sort();
    let rtt = rtts[rtts.len() / 2];
    let mut bytes = 0usize;
    let t = Instant::now();
    for &n in sizes {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
        let req = echo::request(&payload).map_err(|e| e.to_string())?;
        let answer = client
            .invoke(&req)
            .map_err(|e| format!("echo {n} B: {e}"))?;
        if echo::parse_answer(&answer) != Some(&payload[..]) {
            return Err(format!("echo {n} B: the answer differs"));
        }
        bytes += 2 * n;
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    // An unknown method must come back as rpc_error 400 METHOD_NOT_IMPLEMENTED.
    match client.invoke(&0x1234_5678u32.to_le_bytes()) {
        Err(crate::CallError::Rpc(e)) if (e.code, e.message.as_str()) == echo::NOT_IMPLEMENTED => {}
        other => {
            return Err(format!(
                "unknown method: expected rpc_error 400, got {other:?}"
            ));
        }
    }
    if key == KeyUse::Save {
        client.save();
    }
    client.close();
    Ok(Outcome {
        handshake,
        rtt,
        mb_per_s: bytes as f64 / secs / 1e6,
        note,
    })
}
