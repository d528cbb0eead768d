//! `fastpath capture`: receive with any backend and print or write pcap/pcapng.
//!
//! [`run`] is the whole command, one step per line: the options become a checked
//! [`fastpath::Config`] per interface ([`options`]), the signal thread starts ([`signals`]),
//! the receivers open, then the output ([`output`], rotated by [`rotate`]; so a capture that
//! cannot start leaves an existing file alone), privileges drop (`-Z`, [`privs`]), one thread per
//! receiver writes what it receives and, at the stop, drains what is still queued ([`worker`])
//! while the main thread prints a status line and keeps the files (rotation by time, `-z`,
//! statistics blocks: [`stats`]), and the summary ends it ([`report`]). `-r` reads a file
//! instead ([`read`]); `-D` lists interfaces ([`list`]).

mod list;
mod options;
mod output;
mod privs;
mod read;
mod report;
mod rotate;
mod signals;
mod stats;
mod worker;

use std::sync::Arc;

use anyhow::Result;
use fastpath::{Backend, Config, Receiver};

pub(crate) use options::Args;
use output::Sink;
use rotate::PostRotate;
use signals::Control;
use stats::Board;
use worker::Shared;

pub(crate) fn run(args: Args) -> Result<()> {
    if args.list {
        return list::run(&args);
    }
    if args.read.is_some() {
        return read::run(&args);
    }
    let names = args.interfaces()?;
    let cfg = args.config_for(&names[0])?;
    if args.format_given() == Some(fastpath::pcap::Format::Pcap) && args.several_interfaces() {
        return Err(fastpath::Error::InvalidConfig {
            field: "format",
            why: "pcap records no interface, so packets of several interfaces could not be told \
                  apart: use --format pcapng (the default here)"
                .into(),
        }
        .into());
    }
    let user = args.user.as_deref().map(privs::lookup).transpose()?;
    // Signals first, so a Ctrl-C during setup still ends cleanly.
    let ctl = Control::install()?;
    let to_file = args.to_file();
    // The receivers before the output: a capture that cannot start leaves an existing file as
    // it was.
    let mut receivers = Vec::new();
    let mut interfaces = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let cfg = if i == 0 {
            cfg.clone()
        } else {
            args.config_for(name)?
        };
        let opened = open_receivers(&args, &cfg, name)?;
        interfaces.push((opened[0].ifindex(), name.clone()));
        receivers.extend(opened);
    }
    let mut sink = Sink::open(&args, &ctl)?;
    // Described in the pcapng header even if no packet arrives; the header goes out at once.
    for (ifindex, name) in &interfaces {
        sink.add_interface(*ifindex, name);
    }
    sink.start()?;
    ctl.arm(sink.cut_back_handle());
    let ifindexes: Vec<u32> = receivers.iter().map(Receiver::ifindex).collect();
    let board = Board::new(interfaces, &ifindexes);
    sink.set_before_close(&board);
    if let Some(user) = &user {
        privs::become_user(user, sink.current_file())?;
    }
    report::listening(&args, &receivers);

    let shared = Arc::new(Shared::new(
        Arc::clone(&ctl.stop),
        &args,
        receivers.len(),
        sink,
        Arc::clone(&board),
    ));
    let workers = worker::spawn(receivers, &shared)?;
    let mut post = PostRotate::new(args.postrotate.clone());
    let mut keeping_err: Option<anyhow::Error> = None;
    let mut secs = 0u64;
    report::wait(&shared, &workers, to_file, &mut || {
        secs += 1;
        // None after a panic: the files are no longer touched.
        let Some(mut sink) = shared.sink() else {
            return;
        };
        let mut res = sink.tick(stats::now_ns());
        if secs % stats::EVERY_SECS == 0 {
            res = res.and_then(|()| write_stats(&mut sink, &board));
        }
        let closed = sink.take_closed();
        drop(sink);
        post.run(closed);
        // A file that cannot be rotated or written ends the capture, even with no traffic.
        if let Err(e) = res {
            keeping_err.get_or_insert(e);
            shared.request_stop();
        }
    });

    let mut ended = worker::join(shared, workers);
    if let Some(e) = keeping_err {
        ended.first_err.get_or_insert(e);
    }
    // What reached the output, as the sink counted it: after a write error, the packets
    // complete in the (cut back) files.
    let captured = if ended.panicked {
        let kept = ended.sink.abandon();
        post.finish(Vec::new());
        kept
    } else {
        // The last statistics blocks (a rotated series adds them as each file closes).
        if !ended.sink.rotates() {
            if let Err(e) = write_stats(&mut ended.sink, &board) {
                ended.first_err.get_or_insert(e);
            }
        }
        let fin = ended.sink.finish();
        if let Err(e) = fin.res {
            ended.first_err.get_or_insert(e);
        }
        post.finish(fin.closed);
        fin.captured
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

/// One statistics block per interface into the sink (pcapng files only).
fn write_stats(sink: &mut Sink, board: &Board) -> Result<()> {
    let now = stats::now_ns();
    for (ifindex, st) in board.blocks() {
        sink.write_stats(ifindex, now, &st)?;
    }
    Ok(())
}

/// On interface `name`: one receiver per XDP queue (`--queues`), per fanout thread
/// (`--threads`), or just one.
fn open_receivers(args: &Args, cfg: &Config, name: &str) -> Result<Vec<Receiver>> {
    Ok(if args.backend == Backend::Xdp {
        let queues = options::parse_queues(&args.queues, name)?;
        fastpath::open_queues(cfg, &queues)?
    } else if args.threads == 1 {
        vec![Receiver::open(cfg)?]
    } else {
        fastpath::open_fanout(cfg, args.threads, args.fanout)?
    })
}
