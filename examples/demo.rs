//! The project's main job, runnable on a fresh machine: `cargo run --release --example demo`.
//! Until the `mtproto demo` command-line tool exists, this example drives what the core has.
fn main() {
    let now = mtproto::core::time::UnixTime::from_secs(1_700_000_000);
    println!("mtproto-core linked; unix time input {} s", now.as_secs());
}
