//! `mtproto demo`.

use std::process::ExitCode;

use super::CliError;

/// Arguments of `mtproto demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub(super) fn run(_a: DemoArgs) -> Result<ExitCode, CliError> {
    super::fail("not built yet")
}
