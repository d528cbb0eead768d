//! The measurement loop: `rounds` rounds; each builds a fresh [`Testbed`] per layout and runs
//! every (frame size, row) on it once, in an order drawn from the seed ([`schedule`]). One
//! repetition: receiver or peer started, generator started, warm-up, one timed window,
//! everything stopped again.
//!
//! "Delivered" means read by the user-space program: fastpath rows fold every byte of every
//! packet into a checksum (kept alive with `black_box`); peers count what they processed.
//!
//! Files: [`rows`] (what each row is), [`config`] (what to run) and [`schedule`] (in which
//! order); this file runs the rounds and fills the [`Report`]; one repetition of a row is
//! [`receiver`] (fastpath rows), [`peer`] (peer tools) or [`ceiling`] (XDP_DROP), all on the
//! shared pieces in [`window`] (generator, sleeps, XDP attachments, veth counters).

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use fastpath::Backend;

use crate::gen::{GenReport, Method};
use crate::peers::NetringPeer;
use crate::report::{median, Generator, Machine, Report, Row, Sample, Stability, Status};
use crate::stages::{Ndr, Noise, Stages};
use crate::testbed::{Layout, Testbed, GEN_IF, RX_IF};

mod account;
mod ceiling;
mod config;
mod ndr;
mod peer;
mod receiver;
mod rows;
mod schedule;
mod window;

pub use config::{fresh_seed, LabConfig, Load};
pub use rows::RowSpec;
use rows::{FILTER, FILTER_FLOWS};

/// One repetition's numbers: what `measure` returns and the report keeps (as a [`Sample`]).
#[derive(Debug, Clone, Copy)]
struct Rep {
    pps: f64,
    drops: u64,
    link_drops: u64,
    gen_pps: f64,
    cpu_ns: Option<f64>,
    /// Where the repetition's packets went.
    stages: Stages,
    /// What else the machine did meanwhile.
    noise: Noise,
    /// `--load ndr`: how the no-drop rate was found.
    ndr: Option<Ndr>,
}

impl Rep {
    /// The report's record of this repetition, run in `round`.
    fn sample(&self, round: u32) -> Sample {
        Sample {
            round,
            pps: self.pps,
            offered_pps: self.gen_pps,
            drops: self.drops,
            link_drops: self.link_drops,
            cpu_ns: self.cpu_ns,
            stages: self.stages,
            noise: self.noise,
            ndr: self.ndr,
        }
    }
}

/// How one repetition ended.
#[derive(Debug)]
enum Outcome {
    Done(Box<Rep>),
    Unavailable(String),
    NotInstalled(String),
    Failed(String),
    Interrupted,
}

/// Runs the lab. `progress` receives one line per finished repetition (and notes). Returns the
/// report, partial if `stop` was set (then `interrupted` is true: the rounds that ran are
/// kept, rows cut short say how many ran).
///
/// # Errors
/// The first testbed cannot be built (not root, no netns/veth support, ...).
pub fn run(cfg: &LabConfig, stop: &AtomicBool, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let mut lab = Lab::new(cfg, stop, progress);
    let dpdk_dir_existed = Path::new("/var/run/dpdk").exists();
    (lab.progress)(&format!(
        "{} rounds, seed {} (repeat this order with --seed {})",
        cfg.rounds, cfg.seed, cfg.seed
    ));
    lab.locate_netring();
    let per_layout = cfg.sizes.len() * cfg.rows.len();
    'rounds: for round in 1..=cfg.rounds {
        for part in schedule::round(cfg.seed, round, cfg.layouts.len(), per_layout) {
            let layout = cfg.layouts[part.layout];
            let pending: Vec<usize> = part
                .items
                .iter()
                .map(|&i| part.layout * per_layout + i)
                .filter(|&s| !lab.slots[s].retired)
                .collect();
            if pending.is_empty() {
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                lab.report.interrupted = true;
                break 'rounds;
            }
            let tb = match Testbed::new(layout) {
                Ok(tb) => tb,
                Err(e) if !lab.built_any => return Err(e),
                Err(e) => {
                    let why = format!("round {round}: testbed failed: {e:#}");
                    (lab.progress)(&format!("layout {}: {why}", layout.name()));
                    lab.testbed_errors.push((layout, why));
                    continue;
                }
            };
            lab.built_any = true;
            let described = layout.describe(tb.gen_cpu(), tb.rx_cpu());
            if !lab.report.layouts.contains(&described) {
                (lab.progress)(&format!(
                    "layout {described} (netns {} / {}, veth {GEN_IF}/{RX_IF})",
                    tb.gen_ns(),
                    tb.rx_ns()
                ));
                lab.report.layouts.push(described);
            }
            let flow = lab.part(&tb, round, &pending);
            crate::peers::remove_dpdk_runtime_dir(!dpdk_dir_existed);
            if flow.is_break() {
                // Interrupted: `tb` is torn down as it drops.
                break 'rounds;
            }
            if let Err(e) = tb.teardown() {
                (lab.progress)(&format!("cleanup: {e:#}"));
            }
        }
    }
    Ok(lab.finish())
}

/// One row of the run: what it is and what it measured so far.
struct Slot {
    layout: Layout,
    size: usize,
    spec: RowSpec,
    samples: Vec<Sample>,
    /// How it ended when not by measuring (unavailable, not installed, failed) and why.
    ended: Option<(Status, String)>,
    /// No more repetitions: it ended, or (after an error) would end the same way.
    retired: bool,
}

/// One lab run in progress: the rows being filled and what the progress lines count.
struct Lab<'a> {
    cfg: &'a LabConfig,
    stop: &'a AtomicBool,
    progress: &'a mut dyn FnMut(&str),
    /// The netring rows' harness (`None`: no such row asked for).
    netring: Option<Result<NetringPeer, String>>,
    report: Report,
    /// Every row, in table order (layout, size, row).
    slots: Vec<Slot>,
    /// Whether a testbed was built yet (the first failing is the run's error).
    built_any: bool,
    /// Testbeds that could not be built after the first, and why.
    testbed_errors: Vec<(Layout, String)>,
    /// Repetitions in the whole run (less those of rows that ended early), and those done.
    total: usize,
    done: usize,
    gen_rates: Vec<f64>,
    gen_methods: Vec<(Method, Option<String>)>,
}

impl<'a> Lab<'a> {
    fn new(cfg: &'a LabConfig, stop: &'a AtomicBool, progress: &'a mut dyn FnMut(&str)) -> Lab<'a> {
        let report = Report {
            machine: Machine::detect(),
            generator: Generator {
                method: "none".into(),
                rate_pps: 0.0,
                note: None,
            },
            seed: cfg.seed,
            rounds: cfg.rounds,
            load: cfg.load.kind(),
            loss_pct: match cfg.load {
                Load::Max => None,
                Load::Ndr { loss } => Some(loss * 100.0),
            },
            layouts: Vec::new(),
            rep_seconds: cfg.rep_time.as_secs_f64(),
            repetitions: cfg.rounds,
            rcvbuf: cfg.rcvbuf,
            interrupted: false,
            rows: Vec::new(),
            ratios: Vec::new(),
            stability: Stability::default(),
        };
        let mut slots = Vec::new();
        for &layout in &cfg.layouts {
            for &size in &cfg.sizes {
                for &spec in &cfg.rows {
                    slots.push(Slot {
                        layout,
                        size,
                        spec,
                        samples: Vec::new(),
                        ended: None,
                        retired: false,
                    });
                }
            }
        }
        Lab {
            cfg,
            stop,
            progress,
            netring: None,
            report,
            total: slots.len() * cfg.rounds as usize,
            slots,
            built_any: false,
            testbed_errors: Vec::new(),
            done: 0,
            gen_rates: Vec::new(),
            gen_methods: Vec::new(),
        }
    }

    /// The netring rows' harness: found or built once, before any testbed exists (a build must
    /// not compete with a measurement).
    fn locate_netring(&mut self) {
        self.netring = self
            .cfg
            .rows
            .iter()
            .any(|r| matches!(r, RowSpec::Peer(p) if p.is_netring()))
            .then(|| NetringPeer::locate(self.progress));
        if let Some(Err(why)) = &self.netring {
            (self.progress)(&format!("netring peer: {why}"));
        }
    }

    /// One repetition of each of `slots` (in that order) on `tb`; breaks when `stop` was set.
    fn part(&mut self, tb: &Testbed, round: u32, slots: &[usize]) -> ControlFlow<()> {
        for &s in slots {
            if self.stop.load(Ordering::Relaxed) {
                self.report.interrupted = true;
                return ControlFlow::Break(());
            }
            self.repetition(tb, round, s)?;
        }
        ControlFlow::Continue(())
    }

    /// One repetition of slot `s` in `round`.
    fn repetition(&mut self, tb: &Testbed, round: u32, s: usize) -> ControlFlow<()> {
        let cfg = self.cfg;
        let (layout, size, spec) = {
            let slot = &self.slots[s];
            (slot.layout, slot.size, slot.spec)
        };
        self.done += 1;
        let (outcome, gr) = measure(tb, spec, size, cfg, self.netring.as_ref(), self.stop);
        if let Some(g) = &gr {
            self.gen_methods.push((g.method, g.fallback_reason.clone()));
        }
        let tag = format!(
            "[{}/{}] round {round}/{} {} {} {size}B",
            self.done,
            self.total,
            cfg.rounds,
            layout.name(),
            spec.name(),
        );
        let (status, why) = match outcome {
            Outcome::Done(r) => {
                let cpu = r
                    .cpu_ns
                    .map_or(String::new(), |c| format!(", {c:.0} ns/pkt"));
                let st = &r.stages;
                let lost = st
                    .lost_at()
                    .map_or(String::new(), |at| format!(", most lost at {at}"));
                let kthread = r.noise.kthread_cpu.map_or(String::new(), |c| {
                    format!(
                        ", NAPI kthread on CPU{c} {:.0}% busy",
                        r.noise.kthread_busy * 100.0
                    )
                });
                (self.progress)(&format!(
                    "{tag}: {:.2} Mpps (offered {:.2} Mpps{cpu}{lost}{kthread})",
                    r.pps / 1e6,
                    r.gen_pps / 1e6
                ));
                self.gen_rates.push(r.gen_pps);
                self.slots[s].samples.push(r.sample(round));
                return ControlFlow::Continue(());
            }
            Outcome::Interrupted => {
                (self.progress)(&format!("{tag}: interrupted"));
                self.report.interrupted = true;
                return ControlFlow::Break(());
            }
            Outcome::Unavailable(w) => (Status::Unavailable, w),
            Outcome::NotInstalled(w) => (Status::NotInstalled, w),
            Outcome::Failed(w) => (Status::Failed, w),
        };
        (self.progress)(&format!("{tag}: {why}"));
        // Later rounds would end the same way.
        let slot = &mut self.slots[s];
        slot.ended = Some((status, why));
        slot.retired = true;
        self.total -= (cfg.rounds - round) as usize;
        ControlFlow::Continue(())
    }

    /// The report: every slot that ran summarized, the ratios and the stability line, and the
    /// generator's method (and why, if it differed or fell back) and median rate.
    fn finish(mut self) -> Report {
        let cfg = self.cfg;
        let ndr = matches!(cfg.load, Load::Ndr { .. });
        let interrupted = self.report.interrupted || self.stop.load(Ordering::Relaxed);
        for slot in std::mem::take(&mut self.slots) {
            let spec = slot.spec;
            let mut row = Row::new(
                spec.name(),
                spec.kind(),
                spec.rung(),
                slot.layout,
                slot.size,
            );
            row.filter = spec.filter().map(str::to_owned);
            let ran = slot.samples.len();
            row.summarize(slot.samples, cfg.seed, ndr);
            if let Some((status, why)) = slot.ended {
                row.status = status;
                row.note = Some(why);
            } else if ran < cfg.rounds as usize {
                let testbed = self
                    .testbed_errors
                    .iter()
                    .filter(|(l, _)| *l == slot.layout)
                    .map(|(_, why)| why.as_str())
                    .collect::<Vec<_>>();
                let mut note = format!("{ran} of {} rounds ran", cfg.rounds);
                if !testbed.is_empty() {
                    note = format!("{note} ({})", testbed.join("; "));
                }
                row.status = match (ran, interrupted) {
                    (_, true) => Status::Interrupted,
                    (0, false) => Status::Failed,
                    (_, false) => Status::Ok,
                };
                row.note = Some(note);
                if ran == 0 && interrupted {
                    // Never measured: nothing to show.
                    continue;
                }
            }
            self.report.rows.push(row);
        }
        let mut report = self.report;
        report.interrupted = interrupted;
        report.derive();
        let gen_methods = &self.gen_methods;
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
        report.generator.rate_pps = median(&self.gen_rates).unwrap_or(0.0);
        report
    }
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
    match cfg.load {
        Load::Max => measure_placed(tb, spec, size, cfg, netring, stop),
        Load::Ndr { loss } => ndr::search(cfg, loss, stop, |c| {
            measure_placed(tb, spec, size, c, netring, stop)
        }),
    }
}

/// Attempts at one repetition whose NAPI kthread must stay on the receiver CPU.
const PLACEMENT_ATTEMPTS: u32 = 3;

/// One repetition, repeated (at most [`PLACEMENT_ATTEMPTS`] times in all) when the one-core
/// layout's NAPI kthread was found on another CPU at its end: such a repetition measures the
/// generator's CPU, not the layout (the kthread starves next to the spinning generator).
fn measure_placed(
    tb: &Testbed,
    spec: RowSpec,
    size: usize,
    cfg: &LabConfig,
    netring: Option<&Result<NetringPeer, String>>,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    let mut attempt = 1;
    loop {
        let (o, g) = measure_once(tb, spec, size, cfg, netring, stop);
        let misplaced = match &o {
            Outcome::Done(r) if tb.layout() == Layout::OneCore => {
                r.noise.kthread_cpu.is_some_and(|c| c != tb.rx_cpu())
            }
            _ => false,
        };
        if !misplaced {
            return (o, g);
        }
        if attempt == PLACEMENT_ATTEMPTS {
            return (
                Outcome::Failed(format!(
                    "the NAPI kthread ran on another CPU than the receiver's in {attempt} attempts"
                )),
                g,
            );
        }
        attempt += 1;
    }
}

/// One repetition at `cfg`'s offered load.
fn measure_once(
    tb: &Testbed,
    spec: RowSpec,
    size: usize,
    cfg: &LabConfig,
    netring: Option<&Result<NetringPeer, String>>,
    stop: &AtomicBool,
) -> (Outcome, Option<GenReport>) {
    match spec {
        RowSpec::Fastpath(b) => receiver::measure_fastpath(tb, b, false, None, size, cfg, stop),
        RowSpec::XdpBusyPoll => {
            receiver::measure_fastpath(tb, Backend::Xdp, true, None, size, cfg, stop)
        }
        RowSpec::Filtered(b) => {
            let cfg = LabConfig {
                flows: FILTER_FLOWS,
                ..cfg.clone()
            };
            receiver::measure_fastpath(tb, b, false, Some(FILTER), size, &cfg, stop)
        }
        RowSpec::Ceiling => ceiling::measure_ceiling(tb, size, cfg, stop),
        RowSpec::Peer(p) => peer::measure_peer_row(tb, p, size, cfg, netring, stop),
    }
}
