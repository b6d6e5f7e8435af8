//! Client driver tests that need no MTProto server: the key file lock across processes, and
//! the attempt limiter against a server that refuses every connection.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mtproto_std_io::client::Client;
use mtproto_std_io::core::connection::{ConnectionConfig, TransportConfig};
use mtproto_std_io::core::handshake::RsaKeySet;
use mtproto_std_io::core::transport::Framing;
use mtproto_std_io::keyfile::{KeyFile, KeyFileError};
use mtproto_std_io::{ClientConfig, ClientError};

const CHILD_ENV: &str = "MTPROTO_KEYFILE_CHILD";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtproto-std-io-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run in a child process (this same test binary, re-executed): tries to open the key file and
/// reports through its exit status: 0 opened, 3 refused as in use, 4 other error.
#[test]
fn child_opens_key_file() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // not the child: nothing to do
    };
    let code = match KeyFile::open(path) {
        Ok(_) => 0,
        Err(KeyFileError::InUse(_)) => 3,
        Err(_) => 4,
    };
    std::process::exit(code);
}

fn child_status(path: &std::path::Path) -> i32 {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_opens_key_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .status()
        .unwrap()
        .code()
        .unwrap()
}

#[test]
fn a_second_process_is_refused_the_key_file() {
    let d = temp_dir("lock");
    let path = d.join("dc2.key");
    let held = KeyFile::open(&path).unwrap();
    assert_eq!(child_status(&path), 3, "the second process must be refused");
    drop(held);
    assert_eq!(
        child_status(&path),
        0,
        "free again once the first owner is gone"
    );
}

/// A "server" that accepts every connection and closes it at once; records accept times.
fn refusing_server() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    thread::spawn(move || {
        for c in l.incoming() {
            t.lock().unwrap().push(Instant::now());
            drop(c);
        }
    });
    (addr, times)
}

#[test]
fn the_attempt_limiter_holds_under_a_server_that_refuses_every_connection() {
    let (addr, times) = refusing_server();
    let conn = ConnectionConfig::new(
        2,
        TransportConfig::plain(Framing::Intermediate),
        RsaKeySet::telegram_test(),
    );
    let mut config = ClientConfig::new(addr, conn);
    config.max_failures = Some(3);
    config.seed = Some([7; 32]);
    let t0 = Instant::now();
    let err = Client::connect(config).unwrap_err();
    let elapsed = t0.elapsed();
    assert!(
        matches!(err, ClientError::GaveUp { failures: 3, .. }),
        "{err}"
    );
    let times = times.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "exactly the 3 attempts allowed");
    // tdlib's limits after failures: 1 per 1 s, 2 per 4 s: attempts at 0, ≥1 s, ≥4 s.
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(950), "{gaps:?}");
    assert!(
        times[2] - times[0] >= Duration::from_millis(3950),
        "{gaps:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}
