//! The measurement loop: for each layout a fresh [`Testbed`], for each frame size and row,
//! `repetitions` independent runs (receiver or peer started, generator started, warm-up, one
//! timed window, everything stopped again).
//!
//! "Delivered" means read by the user-space program: fastpath rows fold every byte of every
//! packet into a checksum (kept alive with `black_box`); peers count what they processed.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fastpath::bpf::{Mode, XdpAttachment, XdpProgram};
use fastpath::{Backend, Config, Receiver, Stats};

use crate::gen::{self, FrameSpec, GenConfig, GenReport, Method, MethodChoice};
use crate::peers::{NetringPeer, Peer, PeerRun, Window};
use crate::report::{median, Generator, Kind, Machine, Pps, Report, Row, Rung, Status};
use crate::testbed::{Layout, LinkCounters, Testbed, GEN_IF, RX_IF};
use fastpath_harness::cpu;

/// One row of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowSpec {
    /// A fastpath backend through [`Receiver`].
    Fastpath(Backend),
    /// A peer tool.
    Peer(Peer),
    /// The `xdp` backend with busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` 20 µs,
    /// budget 64) instead of poll + need_wakeup.
    XdpBusyPoll,
    /// XDP_DROP on the receiving veth.
    Ceiling,
    /// A fastpath backend with the filter `udp src port 1024`, which passes 1 of the generator's
    /// 10 flows: the rejected 90 % must cost (almost) nothing in user space.
    Filtered(Backend),
}

/// The filtered rows' expression: flow 0 of the generator (its first UDP source port).
pub(crate) const FILTER: &str = "udp src port 1024";
/// Flows the generator spreads packets over in the filtered rows (1 in 10 passes [`FILTER`]).
pub(crate) const FILTER_FLOWS: u16 = 10;

impl RowSpec {
    /// Every row, in table order.
    pub const ALL: [RowSpec; 15] = [
        RowSpec::Fastpath(Backend::Recv),
        RowSpec::Fastpath(Backend::RecvBatch),
        RowSpec::Fastpath(Backend::Mmap),
        RowSpec::Fastpath(Backend::Xdp),
        RowSpec::XdpBusyPoll,
        // fastpath's dpdk backend on DPDK's af_packet PMD (the device dpdk-testpmd-af_packet
        // uses); "unavailable" unless built with `--features dpdk`.
        RowSpec::Fastpath(Backend::Dpdk),
        RowSpec::Filtered(Backend::Mmap),
        RowSpec::Filtered(Backend::Xdp),
        RowSpec::Peer(Peer::Tcpdump),
        RowSpec::Peer(Peer::NetsniffNg),
        RowSpec::Peer(Peer::TestpmdAfPacket),
        RowSpec::Peer(Peer::TestpmdAfXdp),
        RowSpec::Peer(Peer::NetringV3),
        RowSpec::Peer(Peer::NetringXdp),
        RowSpec::Ceiling,
    ];

    /// Row name.
    pub fn name(self) -> &'static str {
        match self {
            RowSpec::Fastpath(b) => b.name(),
            RowSpec::XdpBusyPoll => "xdp-busy-poll",
            RowSpec::Filtered(Backend::Xdp) => "xdp-filtered",
            RowSpec::Filtered(_) => "mmap-filtered",
            RowSpec::Peer(p) => p.name(),
            RowSpec::Ceiling => "xdp-drop",
        }
    }

    /// Row kind.
    pub fn kind(self) -> Kind {
        match self {
            RowSpec::Fastpath(_) | RowSpec::XdpBusyPoll | RowSpec::Filtered(_) => Kind::Fastpath,
            RowSpec::Peer(_) => Kind::Peer,
            RowSpec::Ceiling => Kind::Ceiling,
        }
    }

    /// The rung it competes on.
    pub fn rung(self) -> Rung {
        match self {
            RowSpec::Fastpath(Backend::Xdp)
            | RowSpec::Filtered(Backend::Xdp)
            | RowSpec::XdpBusyPoll
            | RowSpec::Peer(Peer::TestpmdAfXdp | Peer::NetringXdp) => Rung::Xdp,
            RowSpec::Fastpath(Backend::Mmap | Backend::Dpdk)
            | RowSpec::Filtered(_)
            | RowSpec::Peer(_) => Rung::Mmap,
            RowSpec::Fastpath(_) => Rung::Recv,
            RowSpec::Ceiling => Rung::Kernel,
        }
    }
}

impl std::str::FromStr for RowSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RowSpec::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = RowSpec::ALL.iter().map(|r| r.name()).collect();
                format!("`{s}` is not a row (choose from {})", names.join(", "))
            })
    }
}

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Layouts, in order.
    pub layouts: Vec<Layout>,
    /// Frame sizes (bytes, FCS excluded).
    pub sizes: Vec<usize>,
    /// Rows.
    pub rows: Vec<RowSpec>,
    /// Repetitions per row (≥ 1; the table wants 3).
    pub repetitions: u32,
    /// Length of each timed window.
    pub rep_time: Duration,
    /// Traffic before the window opens (rings fill, NAPI settles).
    pub warmup: Duration,
    /// Generator rate limit (frames per second), `None`: as fast as it goes.
    pub rate: Option<u64>,
    /// UDP flows.
    pub flows: u16,
    /// Frames per live-frames call.
    pub repeat: u32,
    /// Socket receive buffer of the `recv` and `recv-batch` rows (`None`: fastpath's default).
    pub rcvbuf: Option<usize>,
}

impl LabConfig {
    /// The default run: both layouts, 64 and 100 bytes, every row, 3 × 3 s.
    pub fn full() -> LabConfig {
        LabConfig {
            layouts: vec![Layout::OneCore, Layout::Split],
            sizes: vec![64, 100],
            rows: RowSpec::ALL.to_vec(),
            repetitions: 3,
            rep_time: Duration::from_secs(3),
            warmup: Duration::from_millis(300),
            rate: None,
            flows: 1,
            repeat: gen::DEFAULT_REPEAT,
            rcvbuf: None,
        }
    }

    /// `--quick`: one-core, 64 bytes, 3 × 1 s, every row but the dpdk ones (their EAL
    /// start costs ~3 s per repetition, which would break the one-minute budget) and the netring
    /// ones (their harness is built with cargo first, which can take minutes); ask for them with
    /// `--rows`.
    pub fn quick() -> LabConfig {
        LabConfig {
            layouts: vec![Layout::OneCore],
            sizes: vec![64],
            rows: RowSpec::ALL
                .into_iter()
                .filter(|r| {
                    !matches!(
                        r,
                        RowSpec::Fastpath(Backend::Dpdk)
                            | RowSpec::Peer(
                                Peer::TestpmdAfPacket
                                    | Peer::TestpmdAfXdp
                                    | Peer::NetringV3
                                    | Peer::NetringXdp
                            )
                    )
                })
                .collect(),
            rep_time: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            // Smaller calls stop sooner: ~0.15 s per call instead of ~0.3 s.
            repeat: 1 << 20,
            ..LabConfig::full()
        }
    }
}

/// One repetition's numbers.
#[derive(Debug, Clone, Copy)]
struct Rep {
    pps: f64,
    drops: u64,
    link_drops: u64,
    gen_pps: f64,
    cpu_ns: Option<f64>,
}

/// How one repetition ended.
#[derive(Debug)]
enum Outcome {
    Done(Rep),
    Unavailable(String),
    NotInstalled(String),
    Failed(String),
    Interrupted,
}

/// Sleeps `d` in small steps; false if `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Runs the lab. `progress` receives one line per finished repetition (and notes). Returns the
/// report, partial if `stop` was set (then `interrupted` is true).
///
/// # Errors
/// The first testbed cannot be built (not root, no netns/veth support, ...).
pub fn run(cfg: &LabConfig, stop: &AtomicBool, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let machine = Machine::detect();
    let mut report = Report {
        machine,
        generator: Generator {
            method: "none".into(),
            rate_pps: 0.0,
            note: None,
        },
        layouts: Vec::new(),
        rep_seconds: cfg.rep_time.as_secs_f64(),
        repetitions: cfg.repetitions,
        rcvbuf: cfg.rcvbuf,
        interrupted: false,
        rows: Vec::new(),
    };
    let total = cfg.layouts.len() * cfg.sizes.len() * cfg.rows.len() * cfg.repetitions as usize;
    let mut done = 0usize;
    let mut gen_rates: Vec<f64> = Vec::new();
    let mut gen_methods: Vec<(Method, Option<String>)> = Vec::new();
    let dpdk_dir_existed = std::path::Path::new("/var/run/dpdk").exists();
    // The netring rows' harness: found or built once, before any testbed exists (a build must
    // not compete with a measurement).
    let netring = cfg
        .rows
        .iter()
        .any(|r| matches!(r, RowSpec::Peer(p) if p.is_netring()))
        .then(|| NetringPeer::locate(progress));
    if let Some(Err(why)) = &netring {
        progress(&format!("netring peer: {why}"));
    }
    'layouts: for (li, &layout) in cfg.layouts.iter().enumerate() {
        let tb = match Testbed::new(layout) {
            Ok(tb) => tb,
            Err(e) if li == 0 => return Err(e),
            Err(e) => {
                progress(&format!("layout {}: testbed failed: {e:#}", layout.name()));
                continue;
            }
        };
        let described = layout.describe(tb.gen_cpu(), tb.rx_cpu());
        progress(&format!(
            "layout {described} (netns {} / {}, veth {GEN_IF}/{RX_IF})",
            tb.gen_ns(),
            tb.rx_ns()
        ));
        report.layouts.push(described);
        for &size in &cfg.sizes {
            for &spec in &cfg.rows {
                let mut row = Row::new(spec.name(), spec.kind(), spec.rung(), layout, size);
                let mut reps: Vec<Rep> = Vec::new();
                for rep in 1..=cfg.repetitions {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    done += 1;
                    let (outcome, gr) = measure(&tb, spec, size, cfg, netring.as_ref(), stop);
                    if let Some(g) = &gr {
                        gen_methods.push((g.method, g.fallback_reason.clone()));
                    }
                    let tag = format!(
                        "[{done}/{total}] {} {} {size}B rep {rep}/{}",
                        layout.name(),
                        spec.name(),
                        cfg.repetitions
                    );
                    match outcome {
                        Outcome::Done(r) => {
                            let cpu = r
                                .cpu_ns
                                .map_or(String::new(), |c| format!(", {c:.0} ns/pkt"));
                            progress(&format!(
                                "{tag}: {:.2} Mpps (generator {:.2} Mpps{cpu})",
                                r.pps / 1e6,
                                r.gen_pps / 1e6
                            ));
                            gen_rates.push(r.gen_pps);
                            reps.push(r);
                        }
                        Outcome::Interrupted => {
                            progress(&format!("{tag}: interrupted"));
                            break;
                        }
                        other => {
                            let (status, why) = match other {
                                Outcome::Unavailable(w) => (Status::Unavailable, w),
                                Outcome::NotInstalled(w) => (Status::NotInstalled, w),
                                Outcome::Failed(w) => (Status::Failed, w),
                                _ => unreachable!("handled above"),
                            };
                            progress(&format!("{tag}: {why}"));
                            row.status = status;
                            row.note = Some(why);
                            // Later repetitions would end the same way.
                            done += (cfg.repetitions - rep) as usize;
                            break;
                        }
                    }
                }
                fill_row(&mut row, &reps);
                if row.status == Status::Ok && (reps.len() as u32) < cfg.repetitions {
                    row.status = Status::Interrupted;
                    row.note = Some(format!(
                        "{} of {} repetitions ran",
                        reps.len(),
                        cfg.repetitions
                    ));
                }
                let skip = row.status == Status::Interrupted && reps.is_empty();
                if !skip {
                    report.rows.push(row);
                }
                if stop.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    break 'layouts;
                }
            }
        }
        crate::peers::remove_dpdk_runtime_dir(!dpdk_dir_existed);
        if let Err(e) = tb.teardown() {
            progress(&format!("cleanup: {e:#}"));
        }
    }
    report.interrupted |= stop.load(Ordering::Relaxed);
    if let Some((m, note)) = gen_methods.last() {
        report.generator.method = m.name().to_owned();
        report.generator.note = gen_methods
            .iter()
            .find_map(|(_, n)| n.clone())
            .or_else(|| note.clone());
        if gen_methods.iter().any(|(x, _)| x != m) {
            let n = report.generator.note.take().unwrap_or_default();
            report.generator.note = Some(format!("methods differed between measurements; {n}"));
        }
    }
    report.generator.rate_pps = median(&gen_rates).unwrap_or(0.0);
    Ok(report)
}

fn fill_row(row: &mut Row, reps: &[Rep]) {
    let pps: Vec<f64> = reps.iter().map(|r| r.pps).collect();
    row.pps = Pps::of(&pps);
    row.reps = pps;
    row.drops = reps.iter().map(|r| r.drops).sum();
    row.link_drops = reps.iter().map(|r| r.link_drops).sum();
    row.gen_pps = median(&reps.iter().map(|r| r.gen_pps).collect::<Vec<_>>()).unwrap_or(0.0);
    let cpu: Vec<f64> = reps.iter().filter_map(|r| r.cpu_ns).collect();
    row.cpu_ns_per_packet = median(&cpu);
}

/// One repetition of one row. `netring`: the harness of the netring rows (`None` when no such
/// row is asked for).
fn measure(
    tb: &Testbed,
    spec: RowSpec,
    size: usize,
    cfg: &LabConfig,
    netring: Option<&Result<NetringPeer, String>>,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    match spec {
        RowSpec::Fastpath(b) => measure_fastpath(tb, b, false, None, size, cfg, stop),
        RowSpec::XdpBusyPoll => measure_fastpath(tb, Backend::Xdp, true, None, size, cfg, stop),
        RowSpec::Filtered(b) => {
            let cfg = LabConfig {
                flows: FILTER_FLOWS,
                ..cfg.clone()
            };
            measure_fastpath(tb, b, false, Some(FILTER), size, &cfg, stop)
        }
        RowSpec::Ceiling => measure_ceiling(tb, size, cfg, stop),
        RowSpec::Peer(p) if p.is_netring() => {
            let harness = match netring {
                Some(Ok(h)) => h,
                Some(Err(why)) => return (Outcome::NotInstalled(why.clone()), None),
                None => {
                    return (
                        Outcome::NotInstalled("the netring peer was not looked for".into()),
                        None,
                    )
                }
            };
            let r = measure_peer(tb, p, Some(&harness.path), size, cfg, stop);
            // netring holds its XDP program by a bpf_link, gone with the process; this clears
            // a legacy attachment should one be left.
            tb.clear_rx_xdp();
            r
        }
        RowSpec::Peer(p) => {
            if !p.installed() {
                return (
                    Outcome::NotInstalled(format!(
                        "`{}` not found: apt-get install -y {} (or run with --install-peers)",
                        p.binary(),
                        p.package()
                    )),
                    None,
                );
            }
            let r = measure_peer(tb, p, None, size, cfg, stop);
            // A peer that died may have left its program on fplr0.
            tb.clear_rx_xdp();
            r
        }
    }
}

/// The generator running on its own thread for the duration of `f`.
struct GenCtl {
    stop: AtomicBool,
    sent: AtomicU64,
}

fn gen_config(size: usize, cfg: &LabConfig) -> GenConfig {
    let mut frames = FrameSpec::new(size);
    frames.flows = cfg.flows;
    let mut g = GenConfig::new(GEN_IF, frames);
    g.rate = cfg.rate;
    g.repeat = cfg.repeat;
    g.method = MethodChoice::Auto;
    // The receiving veth always has a native program here (ours or the peer's).
    g.probe = false;
    g
}

/// Runs `f` while the generator sends `size`-byte frames into the testbed; returns `f`'s
/// result and the generator's report.
fn with_generator<T>(
    tb: &Testbed,
    size: usize,
    cfg: &LabConfig,
    f: impl FnOnce() -> T,
) -> (T, Result<GenReport>) {
    let ctl = GenCtl {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
    };
    let gcfg = gen_config(size, cfg);
    thread::scope(|s| {
        let h = thread::Builder::new()
            .name("fplab-gen".into())
            .spawn_scoped(s, || -> Result<GenReport> {
                tb.enter_gen()?;
                gen::run(&gcfg, &ctl.stop, &ctl.sent)
            })
            .expect("spawning a thread only fails when the system is out of resources");
        let out = f();
        ctl.stop.store(true, Ordering::Relaxed);
        let r = h
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the generator thread panicked")));
        (out, r)
    })
}

/// Attaches `prog` natively to `fplr0` (on a helper thread in the receiver namespace).
fn attach_rx(tb: &Testbed, prog: &XdpProgram) -> Result<XdpAttachment> {
    let ifindex = tb.rx_ifindex();
    tb.in_rx(|| Ok(XdpAttachment::attach(prog, ifindex, Mode::Native, false)?))
        .context("attaching an XDP program to the receiving veth")
}

/// Attaches `prog` (just loaded, `name` for the message) as [`attach_rx`] does; a failure to
/// load or attach is the row's [`Outcome::Failed`]. Detaches when the pair is dropped.
fn load_attach_rx(
    tb: &Testbed,
    prog: fastpath::Result<XdpProgram>,
    name: &str,
) -> Result<(XdpAttachment, XdpProgram), Outcome> {
    let prog = prog.map_err(|e| Outcome::Failed(format!("loading {name}: {e}")))?;
    let att = attach_rx(tb, &prog).map_err(|e| Outcome::Failed(format!("{e:#}")))?;
    Ok((att, prog))
}

/// `rx_dropped` of the receiving veth between two readings; 0 when either is missing.
fn link_drops(c0: Option<LinkCounters>, c1: Option<LinkCounters>) -> u64 {
    match (c0, c1) {
        (Some(x), Some(y)) => y.rx_dropped.saturating_sub(x.rx_dropped),
        _ => 0,
    }
}

/// What the receiver thread records when asked.
#[derive(Debug, Clone, Copy)]
struct Snap {
    t: Instant,
    packets: u64,
    cpu_ns: u64,
    stats: Option<Stats>,
}

#[derive(Debug, Default)]
struct RxCtl {
    /// Set by the receiver thread once its `Receiver` is open. Release/Acquire: no Rust data travels
    /// with it, but it orders everything the receiver set up before it (socket open, XDP
    /// program attached) before what the main thread does on seeing it (layout, generator);
    /// a one-time flag, so the stronger ordering costs nothing. (A receiver that fails sets
    /// `failed` and returns without it; the join publishes that.)
    ready: AtomicBool,
    stop: AtomicBool,
    /// Incremented by the main thread to ask for a snapshot; the receiver answers once per
    /// increment it sees. Relaxed: nothing is published through the counter itself (the
    /// answer is pushed and read under the `snaps` mutex), it only has to be seen eventually.
    req: AtomicU32,
    snaps: Mutex<Vec<Snap>>,
    failed: Mutex<Option<Outcome>>,
}

impl RxCtl {
    /// Asks for a snapshot and waits (up to 2 s) for it.
    fn snapshot(&self) -> Option<Snap> {
        let want = self.snaps.lock().map(|s| s.len()).unwrap_or(0) + 1;
        self.req.fetch_add(1, Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(s) = self.snaps.lock() {
                if s.len() >= want {
                    return s.last().copied();
                }
            }
            thread::sleep(Duration::from_micros(200));
        }
        None
    }
}

/// Every byte of the packet, summed: the proof that user space read it.
#[inline]
fn touch(data: &[u8]) -> u64 {
    let data = std::hint::black_box(data);
    data.iter().fold(0u64, |a, &b| a.wrapping_add(u64::from(b)))
}

fn receiver_loop(
    tb: &Testbed,
    backend: Backend,
    busy_poll: bool,
    filter: Option<&str>,
    rcvbuf: Option<usize>,
    ctl: &RxCtl,
) -> Result<()> {
    tb.enter_rx()?;
    // AF_PACKET rungs: veth needs an XDP program for NAPI (live frames, threaded NAPI).
    let _pass = if backend == Backend::Xdp {
        None
    } else {
        let prog = XdpProgram::pass()?;
        let att = XdpAttachment::attach(&prog, tb.rx_ifindex(), Mode::Native, false)?;
        Some((att, prog))
    };
    let device = if backend == Backend::Dpdk {
        // The same vdev and geometry as the dpdk-testpmd af_packet row (LAB-NOTES).
        format!("net_af_packet0,iface={RX_IF},blocksz=4096,framesz=2048,framecnt=4096")
    } else {
        RX_IF.to_owned()
    };
    let mut config = Config::new(device).backend(backend);
    if let Some(bytes) = rcvbuf {
        config = config.rcvbuf(bytes);
    }
    if let Some(expr) = filter {
        config = config.filter(fastpath::Filter::new(expr).context("compiling the lab filter")?);
    }
    if busy_poll {
        let mut x = fastpath::XdpConfig::default();
        x.busy_poll = Some((20, 64));
        config = config.xdp(x);
    }
    let mut rx = match Receiver::open(&config) {
        Ok(rx) => rx,
        Err(e @ fastpath::Error::Unsupported { .. }) => {
            if let Ok(mut f) = ctl.failed.lock() {
                *f = Some(Outcome::Unavailable(e.to_string()));
            }
            return Ok(());
        }
        Err(e) => return Err(e).context(format!("opening a {backend} receiver on {RX_IF}")),
    };
    ctl.ready.store(true, Ordering::Release);
    let mut packets = 0u64;
    let mut acc = 0u64;
    let mut seen = 0u32;
    while !ctl.stop.load(Ordering::Relaxed) {
        let batch = rx.recv(Some(Duration::from_millis(20)))?;
        for p in &batch {
            acc = acc.wrapping_add(touch(p.data()));
            packets += 1;
        }
        drop(batch);
        let req = ctl.req.load(Ordering::Relaxed);
        if req != seen {
            seen = req;
            let snap = Snap {
                t: Instant::now(),
                packets,
                cpu_ns: cpu::thread_cpu_ns(),
                stats: rx.stats().ok(),
            };
            if let Ok(mut s) = ctl.snaps.lock() {
                s.push(snap);
            }
        }
    }
    std::hint::black_box(acc);
    Ok(())
}

fn measure_fastpath(
    tb: &Testbed,
    backend: Backend,
    busy_poll: bool,
    filter: Option<&str>,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let ctl = RxCtl::default();
    thread::scope(|s| {
        let rxh = thread::Builder::new()
            .name("fplab-rx".into())
            .spawn_scoped(s, || {
                receiver_loop(tb, backend, busy_poll, filter, cfg.rcvbuf, &ctl)
            })
            .expect("spawning a thread only fails when the system is out of resources");
        // Wait for the receiver to be ready (or to give up).
        let end = Instant::now() + Duration::from_secs(5);
        while !ctl.ready.load(Ordering::Acquire) && !rxh.is_finished() && Instant::now() < end {
            thread::sleep(Duration::from_millis(2));
        }
        let finish =
            |ctl: &RxCtl, rxh: thread::ScopedJoinHandle<'_, Result<()>>| -> Option<Outcome> {
                ctl.stop.store(true, Ordering::Relaxed);
                let r = rxh
                    .join()
                    .unwrap_or_else(|_| Err(anyhow!("the receiver thread panicked")));
                if let Some(o) = ctl.failed.lock().ok().and_then(|mut f| f.take()) {
                    return Some(o);
                }
                r.err().map(|e| Outcome::Failed(format!("{e:#}")))
            };
        if !ctl.ready.load(Ordering::Acquire) {
            let o = finish(&ctl, rxh)
                .unwrap_or_else(|| Outcome::Failed("receiver did not start".into()));
            return (o, None);
        }
        if let Err(e) = tb.apply_layout() {
            let _ = finish(&ctl, rxh);
            return (Outcome::Failed(format!("{e:#}")), None);
        }
        let (win, gr) = with_generator(tb, size, cfg, || {
            if !sleep_unless(stop, cfg.warmup) {
                return Err(Outcome::Interrupted);
            }
            let (Some(a), c0) = (ctl.snapshot(), tb.rx_counters().ok()) else {
                return Err(Outcome::Failed("the receiver stopped answering".into()));
            };
            if !sleep_unless(stop, cfg.rep_time) {
                return Err(Outcome::Interrupted);
            }
            let (Some(b), c1) = (ctl.snapshot(), tb.rx_counters().ok()) else {
                return Err(Outcome::Failed("the receiver stopped answering".into()));
            };
            Ok((a, b, c0, c1))
        });
        let fin = finish(&ctl, rxh);
        let gr = match gr {
            Ok(g) => g,
            Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
        };
        if let Some(o) = fin {
            return (o, Some(gr));
        }
        let (a, b, c0, c1) = match win {
            Ok(w) => w,
            Err(o) => return (o, Some(gr)),
        };
        let dt = b.t.duration_since(a.t).as_secs_f64();
        let n = b.packets - a.packets;
        let drops = match (a.stats, b.stats) {
            (Some(x), Some(y)) => y.dropped.saturating_sub(x.dropped),
            _ => 0,
        };
        let rep = Rep {
            pps: n as f64 / dt,
            drops,
            link_drops: link_drops(c0, c1),
            gen_pps: gr.rate(),
            cpu_ns: (n > 0).then(|| (b.cpu_ns - a.cpu_ns) as f64 / n as f64),
        };
        (Outcome::Done(rep), Some(gr))
    })
}

fn measure_ceiling(
    tb: &Testbed,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let att = match load_attach_rx(tb, XdpProgram::drop(), "XDP_DROP") {
        Ok(a) => a,
        Err(o) => return (o, None),
    };
    if let Err(e) = tb.apply_layout() {
        return (Outcome::Failed(format!("{e:#}")), None);
    }
    let (win, gr) = with_generator(tb, size, cfg, || {
        if !sleep_unless(stop, cfg.warmup) {
            return Err(Outcome::Interrupted);
        }
        let t0 = Instant::now();
        let c0 = tb
            .rx_counters()
            .map_err(|e| Outcome::Failed(format!("{e:#}")))?;
        if !sleep_unless(stop, cfg.rep_time) {
            return Err(Outcome::Interrupted);
        }
        let t1 = Instant::now();
        let c1 = tb
            .rx_counters()
            .map_err(|e| Outcome::Failed(format!("{e:#}")))?;
        Ok((t0, t1, c0, c1))
    });
    drop(att);
    let gr = match gr {
        Ok(g) => g,
        Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
    };
    let (t0, t1, c0, c1) = match win {
        Ok(w) => w,
        Err(o) => return (o, Some(gr)),
    };
    let dt = t1.duration_since(t0).as_secs_f64();
    // veth counts every frame its XDP program ran on in rx_packets, dropped ones included.
    let n = c1.rx_packets.saturating_sub(c0.rx_packets);
    let rep = Rep {
        pps: n as f64 / dt,
        drops: 0,
        link_drops: link_drops(Some(c0), Some(c1)),
        gen_pps: gr.rate(),
        cpu_ns: None,
    };
    (Outcome::Done(rep), Some(gr))
}

fn measure_peer(
    tb: &Testbed,
    peer: Peer,
    harness: Option<&std::path::Path>,
    size: usize,
    cfg: &LabConfig,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let pass = if peer.needs_pass_program() {
        match load_attach_rx(tb, XdpProgram::pass(), "XDP_PASS") {
            Ok(a) => Some(a),
            Err(o) => return (o, None),
        }
    } else {
        None
    };
    // The harness stops by itself after this, should the lab die without stopping it.
    let max_life = cfg.warmup + cfg.rep_time + Duration::from_secs(60);
    let mut run = match PeerRun::start(tb, peer, harness, max_life, Duration::from_secs(15)) {
        Ok(r) => r,
        Err(e) => return (Outcome::Failed(format!("{e:#}")), None),
    };
    if let Err(e) = tb.apply_layout() {
        return (Outcome::Failed(format!("{e:#}")), None);
    }
    let window = peer.window();
    let (win, gr) = with_generator(tb, size, cfg, || -> Result<_, Outcome> {
        match window {
            Window::Signal | Window::Periodic => {
                if !sleep_unless(stop, cfg.warmup) {
                    return Err(Outcome::Interrupted);
                }
                let c0 = tb.rx_counters().ok();
                let (t0, a) = run
                    .snapshot()
                    .map_err(|e| Outcome::Failed(format!("{}: {e:#}", peer.name())))?;
                if window == Window::Signal && !sleep_unless(stop, cfg.rep_time) {
                    return Err(Outcome::Interrupted);
                }
                // Periodic: every snapshot waits for the next 1-s block; take blocks until
                // the window is long enough (within the reading jitter).
                let (t1, b) = loop {
                    let (t1, b) = run
                        .snapshot()
                        .map_err(|e| Outcome::Failed(format!("{}: {e:#}", peer.name())))?;
                    if stop.load(Ordering::Relaxed) {
                        return Err(Outcome::Interrupted);
                    }
                    if window == Window::Signal
                        || t1.duration_since(t0) >= cfg.rep_time.mul_f64(0.9)
                    {
                        break (t1, b);
                    }
                };
                let c1 = tb.rx_counters().ok();
                Ok((t0, t1, a, b, c0, c1))
            }
            Window::AtExit => {
                // The window opens when frames first reach the receiving veth.
                let c0 = tb.rx_counters().ok();
                let start = Instant::now();
                let t0 = loop {
                    let c = tb.rx_counters().ok();
                    if c.zip(c0)
                        .is_some_and(|(c, c0)| c.rx_packets > c0.rx_packets)
                    {
                        break Instant::now();
                    }
                    if start.elapsed() > Duration::from_secs(3) || stop.load(Ordering::Relaxed) {
                        return Err(Outcome::Failed(
                            "no frame reached the receiving veth".into(),
                        ));
                    }
                    thread::sleep(Duration::from_millis(2));
                };
                if !sleep_unless(stop, cfg.rep_time + cfg.warmup) {
                    return Err(Outcome::Interrupted);
                }
                let c1 = tb.rx_counters().ok();
                Ok((t0, t0, Default::default(), Default::default(), c0, c1))
            }
        }
    });
    let (t_int, last, tail) = run.finish();
    drop(pass);
    let gr = match gr {
        Ok(g) => g,
        Err(e) => return (Outcome::Failed(format!("generator: {e:#}")), None),
    };
    let (t0, t1, a, b, c0, c1) = match win {
        Ok(w) => w,
        Err(o) => return (o, Some(gr)),
    };
    let (n, drops, dt) = if window == Window::AtExit {
        let Some(last) = last else {
            return (
                Outcome::Failed(format!("{} printed no summary: {tail}", peer.name())),
                Some(gr),
            );
        };
        (
            last.delivered,
            last.dropped,
            t_int.duration_since(t0).as_secs_f64(),
        )
    } else {
        (
            b.delivered.saturating_sub(a.delivered),
            b.dropped.saturating_sub(a.dropped),
            t1.duration_since(t0).as_secs_f64(),
        )
    };
    let rep = Rep {
        pps: n as f64 / dt,
        drops,
        link_drops: link_drops(c0, c1),
        gen_pps: gr.rate(),
        cpu_ns: None,
    };
    (Outcome::Done(rep), Some(gr))
}
