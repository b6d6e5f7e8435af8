//! What the benches that print ratio tables share: size labels and the fastest criterion
//! sample of a benchmark in this run.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

/// `16B`, `128B`, `1KiB`, …: the parameter label of a size.
pub fn label(n: usize) -> String {
    if n >= 1024 {
        format!("{}KiB", n / 1024)
    } else {
        format!("{n}B")
    }
}

static START: OnceLock<SystemTime> = OnceLock::new();

/// Marks the start of this run: samples older than this are not read back.
pub fn start() {
    START.get_or_init(SystemTime::now);
}

/// Criterion's output directory, as criterion finds it (`CRITERION_HOME`, else the cargo
/// target directory).
fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Fastest time per iteration (ns) over the samples of `group/function[/param]` in this run
/// (`param` empty: none). The minimum, not the mean: on a shared machine other processes only
/// ever ADD time, so the fastest sample is the best estimate of what the code costs.
pub fn fastest_ns(group: &str, function: &str, param: &str) -> Option<f64> {
    let mut path = criterion_dir().join(group).join(function);
    if !param.is_empty() {
        path = path.join(param);
    }
    let path = path.join("new/sample.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < *START.get()? {
        return None; // left over from an earlier (filtered) run
    }
    let text = std::fs::read_to_string(path).ok()?;
    let numbers = |key: &str| -> Option<Vec<f64>> {
        let at = text.find(key)? + key.len();
        let rest = &text[at..];
        let end = rest.find(']')?;
        rest[..end]
            .split(',')
            .map(|v| v.trim().parse().ok())
            .collect()
    };
    let iters = numbers("\"iters\":[")?;
    let times = numbers("\"times\":[")?;
    iters
        .iter()
        .zip(&times)
        .map(|(i, t)| t / i)
        .min_by(f64::total_cmp)
}
