//! `fastpath capture`: receive with any backend and print or write pcap/pcapng.
//!
//! [`run`] is the whole command, one step per line: the options become a checked
//! [`fastpath::Config`] ([`options`]), the output opens ([`output`]), the receivers open, one
//! thread per receiver writes what it receives ([`worker`]) while the main thread prints a status
//! line, and the summary ends it ([`report`]).

mod options;
mod output;
mod report;
mod worker;

use std::sync::Arc;

use anyhow::Result;
use fastpath::{Backend, Config, Receiver};

pub(crate) use options::Args;
use output::Sink;
use worker::Shared;

pub(crate) fn run(args: Args) -> Result<()> {
    let cfg = args.config()?;
    // Signals first, so a Ctrl-C during setup still ends cleanly.
    let stop = crate::stop_flag()?;
    let to_file = args.to_file();
    let mut sink = Sink::open(&args)?;
    let receivers = open_receivers(&args, &cfg)?;
    // Described in the pcapng header even if no packet arrives.
    sink.add_interface(receivers[0].ifindex(), &args.interface);
    report::listening(&args, &receivers);

    let shared = Arc::new(Shared::new(stop, &args, receivers.len(), sink));
    let workers = worker::spawn(receivers, &shared);
    if to_file {
        report::status_loop(&shared, &workers);
    }

    let mut ended = worker::join(shared, workers);
    if let Err(e) = ended.sink.finish() {
        ended.first_err.get_or_insert(e);
    }
    report::summary(&ended.total, ended.written, ended.first_err.as_ref());
    match ended.first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One receiver per XDP queue (`--queues`), per fanout thread (`--threads`), or just one.
fn open_receivers(args: &Args, cfg: &Config) -> Result<Vec<Receiver>> {
    Ok(if args.backend == Backend::Xdp {
        let queues = options::parse_queues(&args.queues, &args.interface)?;
        fastpath::open_queues(cfg, &queues)?
    } else if args.threads == 1 {
        vec![Receiver::open(cfg)?]
    } else {
        fastpath::open_fanout(cfg, args.threads, args.fanout)?
    })
}
