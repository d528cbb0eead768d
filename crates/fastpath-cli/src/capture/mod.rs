//! `fastpath capture`: receive with any backend and print or write pcap/pcapng.
//!
//! [`run`] is the whole command, one step per line: the options become a checked
//! [`fastpath::Config`] ([`options`]), the signal thread starts ([`signals`]), the receivers
//! open, then the output ([`output`]; so a capture that cannot start leaves an existing file
//! alone), one thread per receiver writes what it receives and, at the stop, drains what is
//! still queued ([`worker`]) while the main thread prints a status line, and the summary ends it
//! ([`report`]).

mod options;
mod output;
mod report;
mod signals;
mod worker;

use std::sync::Arc;

use anyhow::Result;
use fastpath::{Backend, Config, Receiver};

pub(crate) use options::Args;
use output::Sink;
use signals::Control;
use worker::Shared;

pub(crate) fn run(args: Args) -> Result<()> {
    let cfg = args.config()?;
    // Signals first, so a Ctrl-C during setup still ends cleanly.
    let ctl = Control::install()?;
    // The receivers before the output: a capture that cannot start leaves an existing file as
    // it was.
    let receivers = open_receivers(&args, &cfg)?;
    let mut sink = Sink::open(&args, &ctl)?;
    // Described in the pcapng header even if no packet arrives; the header goes out at once.
    sink.add_interface(receivers[0].ifindex(), &args.interface);
    sink.start()?;
    ctl.arm(sink.cut_back_handle());
    report::listening(&args, &receivers);

    let shared = Arc::new(Shared::new(
        Arc::clone(&ctl.stop),
        &args,
        receivers.len(),
        sink,
    ));
    let workers = worker::spawn(receivers, &shared)?;
    report::wait(&shared, &workers, args.to_file());

    let mut ended = worker::join(shared, workers);
    // What reached the output, as the sink counted it: after a write error, the packets
    // complete in the (cut back) file.
    let captured = if ended.panicked {
        ended.sink.abandon()
    } else {
        let (n, res) = ended.sink.finish();
        if let Err(e) = res {
            ended.first_err.get_or_insert(e);
        }
        n
    };
    report::summary(&report::Counts {
        captured,
        total: &ended.total,
        beyond_count: ended.beyond_count,
        left: ended.left,
    });
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
