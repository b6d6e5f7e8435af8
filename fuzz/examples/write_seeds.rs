//! Writes the seed corpora of the per-step handshake targets and `transport_faketls` into
//! `fuzz/corpus/<target>/` from the precomputed states (themselves built from the official
//! sample, `mtproto_samples-auth_key.md`):
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`
//!
//! The corpus directories are git-ignored (fuzzing adds to them); the seeds are committed with
//! `git add -f`. The `demo-*` seeds depend on how the machines draw from their RNG (the demo
//! server's `a`, the blinding factor): rerun this when that changes, or they stop being valid
//! messages for the precomputed states (the `spec-*` ones and the plaintext seeds stay useful).

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<(&str, &str, Vec<u8>)> = mtproto_fuzz::handshake::states().seeds.clone();
    for (name, input) in &mtproto_fuzz::faketls::tls().seeds {
        files.push(("transport_faketls", name, input.clone()));
    }
    for (target, name, bytes) in files {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("seed-{name}"));
        fs::write(&path, &bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
