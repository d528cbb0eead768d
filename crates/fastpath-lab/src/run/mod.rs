//! The measurement loop: for each layout a fresh [`Testbed`], for each frame size and row,
//! `repetitions` independent runs (receiver or peer started, generator started, warm-up, one
//! timed window, everything stopped again).
//!
//! "Delivered" means read by the user-space program: fastpath rows fold every byte of every
//! packet into a checksum (kept alive with `black_box`); peers count what they processed.
//!
//! Files: [`rows`] (what each row is) and [`config`] (the schedule); this file runs the schedule
//! and fills the [`Report`]; one repetition of a row is [`receiver`] (fastpath rows), [`peer`]
//! (peer tools) or [`ceiling`] (XDP_DROP), all on the shared pieces in [`window`] (generator,
//! sleeps, XDP attachments, veth counters).

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use fastpath::Backend;

use crate::gen::{GenReport, Method};
use crate::peers::NetringPeer;
use crate::report::{median, Generator, Machine, Pps, Report, Row, Status};
use crate::stages::{Noise, Stages};
use crate::testbed::{Layout, Testbed, GEN_IF, RX_IF};

mod ceiling;
mod config;
mod peer;
mod receiver;
mod rows;
mod window;

pub use config::LabConfig;
pub use rows::RowSpec;
use rows::{FILTER, FILTER_FLOWS};

/// One repetition's numbers.
// `stages` and `noise` are filled by the measurement and read by the report (lab v2, in progress).
#[allow(dead_code)]
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
/// report, partial if `stop` was set (then `interrupted` is true).
///
/// # Errors
/// The first testbed cannot be built (not root, no netns/veth support, ...).
pub fn run(cfg: &LabConfig, stop: &AtomicBool, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let mut lab = Lab::new(cfg, stop, progress);
    let dpdk_dir_existed = Path::new("/var/run/dpdk").exists();
    lab.locate_netring();
    for (li, &layout) in cfg.layouts.iter().enumerate() {
        let tb = match Testbed::new(layout) {
            Ok(tb) => tb,
            Err(e) if li == 0 => return Err(e),
            Err(e) => {
                (lab.progress)(&format!("layout {}: testbed failed: {e:#}", layout.name()));
                continue;
            }
        };
        if lab.layout(&tb, layout).is_break() {
            // Interrupted: `tb` is torn down as it drops.
            break;
        }
        crate::peers::remove_dpdk_runtime_dir(!dpdk_dir_existed);
        if let Err(e) = tb.teardown() {
            (lab.progress)(&format!("cleanup: {e:#}"));
        }
    }
    Ok(lab.finish())
}

/// One lab run in progress: the report being filled and what the progress lines count.
struct Lab<'a> {
    cfg: &'a LabConfig,
    stop: &'a AtomicBool,
    progress: &'a mut dyn FnMut(&str),
    /// The netring rows' harness (`None`: no such row asked for).
    netring: Option<Result<NetringPeer, String>>,
    report: Report,
    /// Repetitions in the whole run, and those done or given up so far.
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
            layouts: Vec::new(),
            rep_seconds: cfg.rep_time.as_secs_f64(),
            repetitions: cfg.repetitions,
            rcvbuf: cfg.rcvbuf,
            interrupted: false,
            rows: Vec::new(),
        };
        Lab {
            cfg,
            stop,
            progress,
            netring: None,
            report,
            total: cfg.layouts.len() * cfg.sizes.len() * cfg.rows.len() * cfg.repetitions as usize,
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

    /// Every size and row on one testbed; breaks when `stop` was set.
    fn layout(&mut self, tb: &Testbed, layout: Layout) -> ControlFlow<()> {
        let described = layout.describe(tb.gen_cpu(), tb.rx_cpu());
        (self.progress)(&format!(
            "layout {described} (netns {} / {}, veth {GEN_IF}/{RX_IF})",
            tb.gen_ns(),
            tb.rx_ns()
        ));
        self.report.layouts.push(described);
        for &size in &self.cfg.sizes {
            for &spec in &self.cfg.rows {
                if let Some(row) = self.row(tb, layout, spec, size) {
                    self.report.rows.push(row);
                }
                if self.stop.load(Ordering::Relaxed) {
                    self.report.interrupted = true;
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The repetitions of one row; `None` if it was interrupted before any repetition ran.
    fn row(&mut self, tb: &Testbed, layout: Layout, spec: RowSpec, size: usize) -> Option<Row> {
        let cfg = self.cfg;
        let mut row = Row::new(spec.name(), spec.kind(), spec.rung(), layout, size);
        let mut reps: Vec<Rep> = Vec::new();
        for rep in 1..=cfg.repetitions {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.done += 1;
            let (outcome, gr) = measure(tb, spec, size, cfg, self.netring.as_ref(), self.stop);
            if let Some(g) = &gr {
                self.gen_methods.push((g.method, g.fallback_reason.clone()));
            }
            let tag = format!(
                "[{}/{}] {} {} {size}B rep {rep}/{}",
                self.done,
                self.total,
                layout.name(),
                spec.name(),
                cfg.repetitions
            );
            let (status, why) = match outcome {
                Outcome::Done(r) => {
                    let cpu = r
                        .cpu_ns
                        .map_or(String::new(), |c| format!(", {c:.0} ns/pkt"));
                    (self.progress)(&format!(
                        "{tag}: {:.2} Mpps (generator {:.2} Mpps{cpu})",
                        r.pps / 1e6,
                        r.gen_pps / 1e6
                    ));
                    self.gen_rates.push(r.gen_pps);
                    reps.push(*r);
                    continue;
                }
                Outcome::Interrupted => {
                    (self.progress)(&format!("{tag}: interrupted"));
                    break;
                }
                Outcome::Unavailable(w) => (Status::Unavailable, w),
                Outcome::NotInstalled(w) => (Status::NotInstalled, w),
                Outcome::Failed(w) => (Status::Failed, w),
            };
            (self.progress)(&format!("{tag}: {why}"));
            row.status = status;
            row.note = Some(why);
            // Later repetitions would end the same way.
            self.done += (cfg.repetitions - rep) as usize;
            break;
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
        (!skip).then_some(row)
    }

    /// The report, with the generator's method (and why, if it differed or fell back) and its
    /// median rate.
    fn finish(self) -> Report {
        let mut report = self.report;
        report.interrupted |= self.stop.load(Ordering::Relaxed);
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
