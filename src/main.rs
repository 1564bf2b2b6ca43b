//! The `oxidesk` binary: parse the command line, hand over to `cli::run`.

use clap::Parser;

/// mimalloc rather than the system allocator: glibc returned freed memory
/// to the system after every group commit (`madvise`, and the TLB
/// shootdowns it causes), a fifth of the writer thread's time under load
/// (issue 17; see README, Benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    match oxidesk::cli::Cli::try_parse() {
        Ok(cli) => oxidesk::cli::run(cli),
        // Under an MTA any clap outcome (an error, even `--help`) must not
        // deliver or bounce the message: 75 keeps it for a retry.
        Err(e) if std::env::args_os().any(|a| a == "pipe") => {
            // A wrong flag in an MTA's pipe command is a fault of ours:
            // clap's exit 2 would bounce the customer's mail, 75 keeps it.
            use std::io::Write as _;
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default();
            let _ = writeln!(
                std::io::stderr().lock(),
                "oxidesk pipe: bad command line: {first} (exit 75: the MTA keeps the message and retries)"
            );
            std::process::exit(oxidesk::cli::PIPE_TEMPFAIL)
        }
        Err(e) => e.exit(),
    }
}
