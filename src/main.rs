//! The `mtproto` command: see `mtproto --help` (implemented in `mtproto_std_io::cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    mtproto_std_io::cli::main(|level| {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            .init();
    })
}
