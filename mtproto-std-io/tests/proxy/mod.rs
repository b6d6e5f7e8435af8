//! A loopback TCP proxy that injects faults between a client and the server: cut a connection
//! after some bytes, stop forwarding the server's bytes, refuse connections.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does to the next connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Forward, but cut the connection (both ways) once this many client bytes went through;
    /// then back to `Pass` for later connections.
    CutAfterClientBytes(usize),
    /// Forward client → server, drop everything server → client after this many bytes.
    BlackholeServerAfter(usize),
    /// Accept and close at once.
    Refuse,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    pub accepted: Arc<AtomicUsize>,
    pub cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let accepted = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, a, c, s) = (mode.clone(), accepted.clone(), cuts.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let mode = *m.lock().unwrap();
                if mode == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                if let Mode::CutAfterClientBytes(_) = mode {
                    *m.lock().unwrap() = Mode::Pass;
                }
                let c = c.clone();
                pump_pair(client, server, mode, c);
            }
        });
        Proxy {
            addr,
            mode,
            accepted,
            cuts,
            stop,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn pump_pair(client: TcpStream, server: TcpStream, mode: Mode, cuts: Arc<AtomicUsize>) {
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (c3, s3) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let cut_at = match mode {
        Mode::CutAfterClientBytes(n) => Some(n),
        _ => None,
    };
    let blackhole_at = match mode {
        Mode::BlackholeServerAfter(n) => Some(n),
        _ => None,
    };
    thread::spawn(move || {
        // client → server
        let (mut from, mut to) = (client, server);
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(limit) = cut_at
                && total + n >= limit
            {
                let keep = limit - total;
                let _ = to.write_all(&buf[..keep]);
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
            total += n;
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c3.shutdown(Shutdown::Both);
        let _ = s3.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        // server → client
        let (mut from, mut to) = (s2, c2);
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let forward = match blackhole_at {
                Some(limit) if total >= limit => 0,
                Some(limit) => n.min(limit - total),
                None => n,
            };
            total += n;
            if forward > 0 && to.write_all(&buf[..forward]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
    let _ = Duration::ZERO;
}
