//! `fastpath`: the command-line front end (thin: clap + anyhow over the library).
//!
//! Exit codes: 0 success (also when the reader of a pipe goes away, as `fastpath capture | head`),
//! 1 runtime error, 2 usage error; `capture` exits 130 when a second Ctrl-C (SIGINT, SIGTERM or
//! SIGHUP) cuts its stop short (see `capture/signals.rs`).

mod capture;
mod filter;
mod gen;
mod lab;
mod print;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fastpath",
    version,
    about = "Packet I/O for Linux, every receive path behind one API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Capture packets from an interface (tcpdump-like), to the terminal or a pcap/pcapng file.
    Capture(capture::Args),
    /// Send Ethernet/IPv4/UDP frames out of an interface (XDP live frames, AF_PACKET fallback).
    Gen(gen::Args),
    /// Measure every receive path side by side on a private veth testbed (needs root).
    Lab(lab::Args),
    /// Compile a tcpdump filter expression and print the classic BPF program (-d, -dd, -ddd).
    Filter(filter::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Capture(args) => capture::run(args),
        Command::Gen(args) => gen::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Filter(args) => filter::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Not eprintln!: with stderr closed it would panic and turn exit 1 into 101.
            let _ = writeln!(std::io::stderr(), "fastpath: error: {}", message(&err));
            let usage = err
                .chain()
                .filter_map(|e| e.downcast_ref::<fastpath::Error>())
                .any(fastpath::Error::is_usage)
                || err.chain().any(|e| e.is::<fastpath::FilterError>());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// A flag that SIGINT and SIGTERM set: the commands poll it and end cleanly.
///
/// # Errors
/// The handlers could not be installed.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Clap value parser of a `--duration`: a number of seconds, more than 0 and below 1e9 (about
/// 31 years), so that it always fits a `Duration`; anything else is a usage error.
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v > 0.0 && v < 1e9) {
        return Err(format!(
            "{s} is out of range (more than 0 and less than 1e9 seconds)"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// The error and its causes on one line, skipping a cause whose text the message already holds
/// (library errors quote their OS error).
fn message(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// Whether the error is a closed pipe on our output, which is how `| head` ends us: not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<fastpath::Error>()
                .is_some_and(|f| f.raw_os_error() == Some(libc::EPIPE))
    })
}
