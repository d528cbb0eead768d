//! `fastpath capture`: receive with any backend and print or write pcap/pcapng.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use fastpath::bpf::Mode;
use fastpath::pcap::{Format, PcapWriter};
use fastpath::{Backend, Config, FanoutMode, MmapConfig, Receiver, Stats, XdpConfig, ZeroCopy};

/// How long one `recv` waits before the loop re-checks Ctrl-C, the count and the duration.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Interface to capture on.
    #[arg(short = 'i', long = "interface")]
    interface: String,
    /// Receive path: recv, recv-batch, mmap, xdp (dpdk when built with it).
    #[arg(short = 'b', long = "backend", default_value = "mmap", value_parser = parse_backend)]
    backend: Backend,
    /// Stop after writing this many packets.
    #[arg(short = 'c', long = "count")]
    count: Option<u64>,
    /// Write packets to FILE (`-` for standard output) instead of printing a line per packet.
    #[arg(short = 'w', long = "write")]
    write: Option<PathBuf>,
    /// Capture at most this many bytes of each packet.
    #[arg(short = 's', long = "snaplen", default_value_t = fastpath::MAX_SNAPLEN)]
    snaplen: u32,
    /// Output file format.
    #[arg(long = "format", default_value = "pcap", value_parser = ["pcap", "pcapng"])]
    format: String,
    /// Receive with N sockets in one PACKET_FANOUT group, each on its own thread.
    #[arg(long = "threads", default_value_t = 1)]
    threads: usize,
    /// How the fanout group spreads packets: hash, lb, cpu or qm.
    #[arg(long = "fanout", default_value = "hash", value_parser = parse_fanout)]
    fanout: FanoutMode,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_parser = crate::parse_secs)]
    duration: Option<Duration>,
    /// Packets per recvmmsg call (recv-batch).
    #[arg(long = "batch", default_value_t = 64)]
    batch: usize,
    /// Socket receive buffer in bytes (recv, recv-batch; default 32 MiB): a larger one absorbs
    /// longer bursts, a smaller one keeps queued packets in cache under sustained overload.
    #[arg(long = "rcvbuf")]
    rcvbuf: Option<usize>,
    /// TPACKET_V3 block size in bytes (mmap; a power of two).
    #[arg(long = "block-size", default_value_t = MmapConfig::default().block_size)]
    block_size: u32,
    /// Number of TPACKET_V3 blocks (mmap; a power of two).
    #[arg(long = "blocks", default_value_t = MmapConfig::default().block_count)]
    blocks: u32,
    /// TPACKET_V3 frame size (mmap; a power of two).
    #[arg(long = "frame-size", default_value_t = MmapConfig::default().frame_size)]
    frame_size: u32,
    /// Longest time a packet may wait in a partly filled block, in milliseconds (mmap).
    #[arg(long = "block-timeout-ms", default_value_t = 1)]
    block_timeout_ms: u64,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promisc: bool,
    /// dpdk: extra EAL arguments, split on whitespace (e.g. "-l 0-1 --log-level=info"); `-i`
    /// names the device: net_af_packet0,iface=eth0, a PCI address, or a port number.
    #[arg(long = "dpdk-args", default_value = "", allow_hyphen_values = true)]
    dpdk_args: String,
    /// xdp: receive queues, `all` or a list like `0,1` (one socket and thread per queue).
    #[arg(long = "queues", default_value = "all")]
    queues: String,
    /// xdp: let fastpath take every packet of an interface that has IP addresses away from the
    /// kernel stack (its own connections on that interface stall while capturing).
    #[arg(long = "take")]
    take: bool,
    /// xdp: attach the XDP program in the driver (`native`) or in `generic` (skb) mode.
    #[arg(long = "xdp-mode", default_value = "native", value_parser = ["native", "generic"])]
    xdp_mode: String,
    /// xdp: replace an XDP program another tool attached to the interface.
    #[arg(long = "xdp-replace")]
    xdp_replace: bool,
    /// xdp: zero-copy policy: `auto` (zero-copy if the driver has it), `require` or `never`.
    #[arg(long = "zero-copy", default_value = "auto", value_parser = ["auto", "require", "never"])]
    zero_copy: String,
    /// xdp: busy-poll the queue for this many microseconds (SO_PREFER_BUSY_POLL + SO_BUSY_POLL,
    /// budget 64) instead of sleeping in poll.
    #[arg(long = "busy-poll")]
    busy_poll: Option<u32>,
    /// xdp: do not use the need_wakeup protocol (a syscall per batch even when busy).
    #[arg(long = "no-need-wakeup")]
    no_need_wakeup: bool,
    /// Read a classic BPF program in `tcpdump -ddd` form (count line, then `code jt jf k`)
    /// instead of taking a filter expression.
    #[arg(long = "bpf-file", value_name = "FILE")]
    bpf_file: Option<PathBuf>,
    /// Filter expression (pcap-filter syntax, as tcpdump): the words after the options, joined
    /// with spaces, e.g. `udp and dst port 53`. Runs in the kernel (recv, recv-batch, mmap), in
    /// the XDP program (xdp: non-matching packets stay with the kernel stack, so --take is not
    /// needed) or before packets are handed out (dpdk).
    #[arg(
        value_name = "EXPRESSION",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    expression: Vec<String>,
}

/// Parses `--queues`: `all` or comma-separated queue ids.
fn parse_queues(spec: &str, interface: &str) -> Result<Vec<u32>> {
    if spec == "all" {
        let n = fastpath::rx_queue_count(interface)?;
        return Ok((0..n).collect());
    }
    spec.split(',')
        .map(|q| {
            q.trim().parse::<u32>().map_err(|_| {
                fastpath::Error::InvalidConfig {
                    field: "queues",
                    why: format!("`{spec}` is not `all` or a list of queue ids like `0,1`"),
                }
                .into()
            })
        })
        .collect()
}

fn parse_backend(s: &str) -> std::result::Result<Backend, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}

fn parse_fanout(s: &str) -> std::result::Result<FanoutMode, String> {
    s.parse().map_err(|e: fastpath::Error| e.to_string())
}

/// Where packets go.
enum Sink {
    /// One tcpdump-like line per packet.
    Lines(io::BufWriter<io::Stdout>),
    /// A pcap/pcapng file or stream.
    File(PcapWriter),
}

impl Sink {
    fn write(&mut self, pkt: &fastpath::Packet<'_>) -> Result<()> {
        match self {
            Sink::Lines(out) => {
                crate::print::write_line(out, pkt.timestamp_ns(), pkt.orig_len(), pkt.data())?
            }
            Sink::File(w) => w.write_packet(
                pkt.timestamp_ns(),
                pkt.orig_len(),
                pkt.data(),
                pkt.ifindex(),
            )?,
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Lines(out) => out.flush()?,
            Sink::File(w) => w.flush()?,
        }
        Ok(())
    }
}

/// State shared by the receive threads and the status line.
struct Shared {
    stop: Arc<AtomicBool>,
    captured: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
    /// Kernel drops per thread, refreshed about twice a second for the status line.
    drops: Vec<AtomicU64>,
    sink: Mutex<Sink>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let mmap = {
        let mut m = MmapConfig::default();
        m.block_size = args.block_size;
        m.block_count = args.blocks;
        m.frame_size = args.frame_size;
        m.block_timeout = Duration::from_millis(args.block_timeout_ms);
        m
    };
    if args.count == Some(0) {
        return Err(fastpath::Error::InvalidConfig {
            field: "count",
            why: "0 packets: give a count of at least 1, or leave -c out".into(),
        }
        .into());
    }
    let xdp = {
        let mut x = XdpConfig::default();
        x.zero_copy = match args.zero_copy.as_str() {
            "require" => ZeroCopy::Require,
            "never" => ZeroCopy::Never,
            _ => ZeroCopy::Auto,
        };
        x.need_wakeup = !args.no_need_wakeup;
        x.busy_poll = args.busy_poll.map(|us| (us, 64));
        x
    };
    let mut cfg = Config::new(args.interface.clone())
        .backend(args.backend)
        .snaplen(args.snaplen)
        .batch_size(args.batch)
        .promiscuous(!args.no_promisc)
        .mmap(mmap)
        .dpdk(fastpath::DpdkConfig::default().eal_args(args.dpdk_args.split_whitespace()))
        .xdp(xdp)
        .xdp_attach(if args.xdp_mode == "generic" {
            Mode::Generic
        } else {
            Mode::Native
        })
        .xdp_replace(args.xdp_replace)
        .take(args.take);
    if let Some(bytes) = args.rcvbuf {
        cfg = cfg.rcvbuf(bytes);
    }
    let filter = crate::filter::from_capture_args(&args.expression, args.bpf_file.as_deref())?;
    let cfg = match filter {
        Some(f) => cfg.filter(f),
        None => cfg,
    };
    cfg.validate()?;
    if args.backend == Backend::Xdp && args.threads != 1 {
        return Err(fastpath::Error::InvalidConfig {
            field: "threads",
            why: "-b xdp runs one thread per queue: choose them with --queues, not --threads"
                .into(),
        }
        .into());
    }

    // Signals first, so a Ctrl-C during setup still ends cleanly.
    let stop = crate::stop_flag()?;

    let format = if args.format == "pcapng" {
        Format::Pcapng
    } else {
        Format::Pcap
    };
    let to_file = args.write.as_ref().is_some_and(|p| p.as_os_str() != "-");
    let mut sink = match &args.write {
        None => Sink::Lines(io::BufWriter::with_capacity(64 << 10, io::stdout())),
        Some(p) if p.as_os_str() == "-" => Sink::File(PcapWriter::stdout(format, args.snaplen)?),
        Some(p) => Sink::File(PcapWriter::create(p, format, args.snaplen)?),
    };

    let receivers = if args.backend == Backend::Xdp {
        let queues = parse_queues(&args.queues, &args.interface)?;
        fastpath::open_queues(&cfg, &queues)?
    } else if args.threads == 1 {
        vec![Receiver::open(&cfg)?]
    } else {
        fastpath::open_fanout(&cfg, args.threads, args.fanout)?
    };
    if let Sink::File(w) = &mut sink {
        // Described in the pcapng header even if no packet arrives.
        w.add_interface(receivers[0].ifindex(), &args.interface);
    }
    let caps = receivers[0].capabilities();
    let mut detail = String::new();
    if args.threads > 1 {
        detail = format!(
            ", {} threads in fanout group {}",
            args.threads,
            receivers[0].fanout_group().unwrap_or(0)
        );
    }
    if let Some(mode) = receivers[0].xdp_mode() {
        let queues: Vec<String> = receivers
            .iter()
            .filter_map(|r| r.queue().map(|q| q.to_string()))
            .collect();
        detail = format!(
            ", {} XDP, queue{} {}{}",
            if mode == Mode::Native {
                "native"
            } else {
                "generic"
            },
            if queues.len() == 1 { "" } else { "s" },
            queues.join(","),
            if caps.driver_zero_copy {
                ""
            } else {
                " (the driver has no AF_XDP zero-copy: the kernel copies each frame)"
            }
        );
        if !caps.restores_vlan {
            detail.push_str(
                "; VLAN tags the device strips are not put back (needs native mode, Linux 6.8+ \
                 and driver support for bpf_xdp_metadata_rx_vlan_tag)",
            );
        }
    }
    eprintln!(
        "listening on {}, backend {} ({}{}), snapshot length {} bytes{detail}",
        args.interface,
        args.backend,
        caps.mode,
        if caps.zero_copy && args.backend != Backend::Xdp {
            ", zero-copy"
        } else {
            ""
        },
        args.snaplen,
    );

    let shared = Arc::new(Shared {
        stop,
        captured: AtomicU64::new(0),
        limit: args.count.unwrap_or(u64::MAX),
        // A deadline past what `Instant` can hold is no deadline.
        deadline: args.duration.and_then(|d| Instant::now().checked_add(d)),
        drops: (0..receivers.len()).map(|_| AtomicU64::new(0)).collect(),
        sink: Mutex::new(sink),
    });

    let workers: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let sh = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("rx-{i}"))
                .spawn(move || worker(rx, i, &sh))
                .expect("spawning a receive thread")
        })
        .collect();

    if to_file {
        status_loop(&shared, &workers);
    }

    let mut total = Stats::default();
    let mut first_err: Option<anyhow::Error> = None;
    for w in workers {
        let (stats, res) = w.join().expect("receive threads do not panic");
        total.merge(&stats);
        if let Err(e) = res {
            first_err.get_or_insert(e);
        }
    }
    let written = shared.captured.load(Ordering::Relaxed).min(shared.limit);
    let sink = Arc::try_unwrap(shared)
        .ok()
        .expect("all threads joined")
        .sink
        .into_inner()
        .expect("no thread panicked holding the sink");
    let finish = match sink {
        Sink::Lines(mut out) => out.flush().map_err(anyhow::Error::from),
        Sink::File(w) => w.finish().map(|_| ()).map_err(anyhow::Error::from),
    };
    if let Err(e) = finish {
        first_err.get_or_insert(e);
    }
    // After a write error the file writer knows exactly how many packets are complete in it.
    let captured = first_err
        .as_ref()
        .and_then(|e| {
            e.chain()
                .find_map(|c| match c.downcast_ref::<fastpath::Error>() {
                    Some(fastpath::Error::Output { kept, .. }) => Some(*kept),
                    _ => None,
                })
        })
        .unwrap_or(written);
    eprintln!("{captured} packets captured");
    eprintln!("{} packets received by kernel", total.received);
    eprintln!("{} packets dropped by kernel", total.dropped);
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One receive thread: batches in, sink out, until stopped. Returns the final counters.
fn worker(mut rx: Receiver, idx: usize, sh: &Shared) -> (Stats, Result<()>) {
    let res = receive_loop(&mut rx, idx, sh);
    if res.is_err() {
        sh.stop.store(true, Ordering::Relaxed);
    }
    let stats = rx.stats().unwrap_or_default();
    (stats, res)
}

fn receive_loop(rx: &mut Receiver, idx: usize, sh: &Shared) -> Result<()> {
    let mut next_stats = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        let batch = rx.recv(Some(POLL_INTERVAL))?;
        if !batch.is_empty() {
            let n = batch.len() as u64;
            // Reserve slots against the count limit so threads together write exactly `limit`.
            let before = sh.captured.fetch_add(n, Ordering::Relaxed);
            let take = n.min(sh.limit.saturating_sub(before));
            let mut sink = sh.sink.lock().expect("no thread panicked holding the sink");
            for pkt in batch.iter().take(take as usize) {
                sink.write(&pkt)?;
            }
            if matches!(*sink, Sink::Lines(_)) {
                sink.flush()?;
            }
            drop(sink);
            if before + n >= sh.limit {
                sh.stop.store(true, Ordering::Relaxed);
            }
        }
        drop(batch);
        let now = Instant::now();
        if sh.deadline.is_some_and(|d| now >= d) {
            sh.stop.store(true, Ordering::Relaxed);
        }
        if now >= next_stats {
            let st = rx.stats()?;
            sh.drops[idx].store(st.dropped, Ordering::Relaxed);
            next_stats = now + Duration::from_millis(500);
        }
    }
    Ok(())
}

/// Prints `pps, total, drops` on stderr once a second until the workers end.
fn status_loop(sh: &Shared, workers: &[thread::JoinHandle<(Stats, Result<()>)>]) {
    let mut last = 0u64;
    let mut last_t = Instant::now();
    let mut next = last_t + Duration::from_secs(1);
    while !workers.iter().all(|w| w.is_finished()) {
        thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now < next {
            continue;
        }
        let total = sh.captured.load(Ordering::Relaxed).min(sh.limit);
        let drops: u64 = sh.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        let pps = (total - last) as f64 / now.duration_since(last_t).as_secs_f64();
        eprintln!("fastpath: {pps:.0} pkts/s, {total} captured, {drops} dropped by kernel");
        last = total;
        last_t = now;
        next = now + Duration::from_secs(1);
    }
}
