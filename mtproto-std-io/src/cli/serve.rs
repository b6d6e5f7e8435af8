//! `mtproto serve`.

use std::process::ExitCode;

use super::CliError;

/// Arguments of `mtproto serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub(super) fn run(_a: ServeArgs) -> Result<ExitCode, CliError> {
    super::fail("not built yet")
}
