//! `mtproto bench`.

use std::process::ExitCode;

use super::CliError;

/// Arguments of `mtproto bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

pub(super) fn run(_a: BenchArgs) -> Result<ExitCode, CliError> {
    super::fail("not built yet")
}
