//! A loopback TCP proxy that injects faults between a client and the server, on the live
//! connections: cut after some more client bytes, stop forwarding the server's bytes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Default)]
struct Faults {
    /// Client bytes still forwarded before the connection is cut (< 0: no cut planned).
    cut_budget: AtomicI64,
    /// Drop everything the server sends.
    blackhole: AtomicBool,
    cuts: AtomicUsize,
    accepted: AtomicUsize,
    /// The live connections' sockets (client side, server side).
    live: Mutex<Vec<(TcpStream, TcpStream)>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    faults: Arc<Faults>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Faults::default());
        faults.cut_budget.store(-1, Ordering::SeqCst);
        let f = faults.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                f.accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    f.live.lock().unwrap().push((c, s));
                }
                pump_pair(client, server, f.clone());
            }
        });
        Proxy { addr, faults }
    }

    /// Cuts the current connection once `n` more client bytes went through.
    pub fn cut_after_client_bytes(&self, n: i64) {
        self.faults.cut_budget.store(n, Ordering::SeqCst);
    }

    pub fn blackhole(&self, on: bool) {
        self.faults.blackhole.store(on, Ordering::SeqCst);
    }

    /// Cuts every live connection now.
    pub fn kill_all(&self) {
        for (c, s) in self.faults.live.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
        self.faults.cuts.fetch_add(1, Ordering::SeqCst);
    }

    pub fn cuts(&self) -> usize {
        self.faults.cuts.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> usize {
        self.faults.accepted.load(Ordering::SeqCst)
    }
}

fn pump_pair(client: TcpStream, server: TcpStream, f: Arc<Faults>) {
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (c3, s3) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let f2 = f.clone();
    thread::spawn(move || {
        // client → server
        let (mut from, mut to) = (client, server);
        let mut buf = [0u8; 4096];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let budget = f.cut_budget.load(Ordering::SeqCst);
            if budget >= 0 {
                if n as i64 >= budget {
                    let _ = to.write_all(&buf[..budget as usize]);
                    f.cut_budget.store(-1, Ordering::SeqCst);
                    f.cuts.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                f.cut_budget.fetch_sub(n as i64, Ordering::SeqCst);
            }
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
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if f2.blackhole.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
