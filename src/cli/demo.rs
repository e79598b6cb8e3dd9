//! `rewind demo`: build the demo database once and say where it is and what it holds.

use anyhow::Result;
use clap::Args;

/// `rewind demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}

pub(super) fn run(_args: &DemoArgs) -> Result<()> {
    Ok(())
}
