//! The `mtproto` command: see `mtproto --help` (implemented in `mtproto_std_io::cli`).

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    mtproto_std_io::cli::main(|level| {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    })
}
