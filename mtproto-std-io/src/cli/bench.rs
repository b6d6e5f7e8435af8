//! `mtproto bench`: in-process load over loopback.

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mtproto_core::connection::{ConnectionConfig, TransportConfig};
use mtproto_core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_core::transport::Framing;

use super::CliError;
use crate::client::Client;
use crate::server::{Server, ServerOptions};
use crate::{ClientConfig, echo};

/// Arguments of `mtproto bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients (one thread and one connection each).
    #[arg(long, short = 'n', default_value_t = 8)]
    pub clients: usize,
    /// Requests per client.
    #[arg(long, short = 'm', default_value_t = 500)]
    pub requests: usize,
    /// Echo payload size, bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Requests each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
}

pub(super) fn run(a: BenchArgs) -> Result<ExitCode, CliError> {
    if a.clients == 0 || a.requests == 0 || a.pipeline == 0 {
        return super::fail("--clients, --requests and --pipeline must be at least 1");
    }
    let rsa = RsaPrivateKey::demo();
    let keys = RsaKeySet::new().with(rsa.public_key().clone());
    let server = Server::bind(
        "127.0.0.1:0",
        ServerOptions {
            rsa_keys: vec![rsa],
            ..ServerOptions::default()
        },
    )?;
    let addr = server.local_addr()?.to_string();
    let server = server.spawn();
    println!(
        "bench: {} clients x {} requests, echo {} B, {} in flight per client, server {addr}",
        a.clients, a.requests, a.size, a.pipeline
    );
    // Connect everyone first: handshakes are not part of the measurement.
    let t = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..a.clients {
        let mut cfg = ClientConfig::new(
            addr.clone(),
            ConnectionConfig::new(
                2,
                TransportConfig::plain(Framing::Intermediate),
                keys.clone(),
            ),
        );
        cfg.max_in_flight = a.pipeline;
        clients.push(Client::connect(cfg)?);
    }
    println!(
        "{} handshakes in {:.2} s",
        a.clients,
        t.elapsed().as_secs_f64()
    );

    let bar = Arc::new(ProgressBar::new((a.clients * a.requests) as u64));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let payload = vec![0x5au8; a.size];
    let req = Arc::new(echo::request(&payload)?);
    let t = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let (req, bar, m, depth) = (req.clone(), bar.clone(), a.requests, a.pipeline);
            thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut lat = Vec::with_capacity(m);
                let mut inflight = std::collections::VecDeque::new();
                let mut sent = 0;
                while lat.len() < m {
                    while sent < m && inflight.len() < depth {
                        let id = c.submit(&req).map_err(|e| e.to_string())?;
                        inflight.push_back((id, Instant::now()));
                        sent += 1;
                    }
                    let Some((id, at)) = inflight.pop_front() else {
                        break;
                    };
                    c.wait(id, Duration::from_secs(30))
                        .map_err(|e| e.to_string())?;
                    lat.push(at.elapsed());
                    bar.inc(1);
                }
                c.close();
                Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(l)) => lat.extend(l),
            Ok(Err(e)) => return super::fail(format!("a client failed: {e}")),
            Err(_) => return super::fail("a client thread panicked"),
        }
    }
    let wall = t.elapsed();
    bar.finish_and_clear();
    // Connection threads add their CPU time when they end: all have once the clients closed.
    let cpu = server.stop().cpu;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let n = lat.len() as f64;
    println!(
        "{} requests in {:.2} s: {:.0} requests/s",
        lat.len(),
        wall.as_secs_f64(),
        n / wall.as_secs_f64()
    );
    println!(
        "latency: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    match cpu {
        Some(cpu) => println!(
            "server CPU: {:.1} us per request ({:.2} s, handshakes included)",
            cpu.as_secs_f64() * 1e6 / n,
            cpu.as_secs_f64()
        ),
        None => println!("server CPU: not measurable on this platform"),
    }
    Ok(ExitCode::SUCCESS)
}
