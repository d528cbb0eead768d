//! `fastpath`: the command-line front end (thin: clap + anyhow over the library).
//!
//! Exit codes: 0 success (also when the reader of a pipe goes away, as `fastpath capture | head`),
//! 1 runtime error, 2 usage error.

mod capture;
mod print;

use std::process::ExitCode;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture packets from an interface (tcpdump-like), to the terminal or a pcap/pcapng file.
    Capture(capture::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Capture(args) => capture::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("fastpath: error: {}", message(&err));
            let usage = err
                .chain()
                .filter_map(|e| e.downcast_ref::<fastpath::Error>())
                .any(fastpath::Error::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
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
