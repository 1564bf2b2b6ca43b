//! The `oxidesk` binary: parse the command line, hand over to `cli::run`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    oxidesk::cli::run(oxidesk::cli::Cli::parse())
}
