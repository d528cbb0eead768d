//! The lab's results and their presentation. Sans-IO: values in, strings out.
//!
//! - this file: the JSON document's types ([`Report`], [`Row`], [`Sample`], [`Ratio`]) and how
//!   one row's repetitions are summarized ([`Row::summarize`]);
//! - [`stats`]: medians, bootstrap intervals, paired ratios, verdicts, the seeded PRNG;
//! - `ratios.rs`: which rows are compared with which ([`ratios`]);
//! - `table.rs`: the text table and the stability line;
//! - `svg.rs`: the bar chart with its interval whiskers.

use serde::{Deserialize, Serialize};

use crate::stages::{Ndr, Noise, Stages};
use crate::testbed::Layout;

mod ratios;
pub mod stats;
mod svg;
mod table;

pub use ratios::ratios;
pub use stats::{median, Verdict};
pub use table::Stability;

/// What the machine is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: usize,
}

impl Machine {
    /// Reads the running machine's description.
    pub fn detect() -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Machine {
            kernel,
            cpu_model,
            cores,
        }
    }
}

/// The generator, as it ran.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Generator {
    /// `xdp-live` or `af-packet` (the method of the last measurement; a mix is named in
    /// `note`).
    pub method: String,
    /// Median achieved rate over all measurements, frames per second.
    pub rate_pps: f64,
    /// Why the preferred method did not run, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a row measures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A fastpath backend.
    Fastpath,
    /// Another tool.
    Peer,
    /// The in-kernel XDP_DROP ceiling.
    Ceiling,
}

/// Rung of the ladder a row is on, for "ratio to the best peer on the same rung".
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Rung {
    /// One syscall per packet or batch (recv, recv-batch).
    Recv,
    /// A ring shared with the kernel, AF_PACKET (mmap, tcpdump, netsniff-ng, testpmd af_packet,
    /// netring-v3).
    Mmap,
    /// AF_XDP (xdp, testpmd af_xdp, netring-xdp).
    Xdp,
    /// The ceiling.
    Kernel,
}

/// A row's packet rate over its repetitions, packets per second.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Pps {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// 95 % confidence interval of the median (percentile bootstrap over the rounds).
    pub ci95: [f64; 2],
}

impl Pps {
    /// Summarizes `reps` (all zero for none); `seed` drives the bootstrap.
    pub fn of(reps: &[f64], seed: u64) -> Pps {
        if reps.is_empty() {
            return Pps::default();
        }
        Pps {
            median: median(reps).unwrap_or(0.0),
            min: reps.iter().copied().fold(f64::MAX, f64::min),
            max: reps.iter().copied().fold(0.0, f64::max),
            ci95: stats::median_ci(reps, seed).unwrap_or([0.0, 0.0]),
        }
    }
}

/// How a row ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Measured.
    Ok,
    /// The backend is not part of this build or kernel (`note` says why).
    Unavailable,
    /// The peer tool is missing (`note` names the package).
    NotInstalled,
    /// The peer or backend failed (`note` says how); the lab went on.
    Failed,
    /// Ctrl-C came before all rounds ran (the repetitions that did are kept).
    Interrupted,
}

impl Status {
    fn label(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unavailable => "unavailable",
            Status::NotInstalled => "not installed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One repetition of a row: what it measured in which round.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// The round it ran in (1-based); rows are paired by it.
    pub round: u32,
    /// Packets delivered to user space per second (`--load ndr`: the no-drop rate).
    pub pps: f64,
    /// The generator's rate during the repetition (`--load ndr`: the highest passing rate).
    pub offered_pps: f64,
    /// Packets the socket or ring dropped.
    pub drops: u64,
    /// `rx_dropped` of the receiving veth.
    pub link_drops: u64,
    /// Receiver CPU time per delivered packet, ns (fastpath rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ns: Option<f64>,
    /// Where its packets went.
    pub stages: Stages,
    /// What else the machine did meanwhile.
    pub noise: Noise,
    /// `--load ndr`: how the no-drop rate was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ndr: Option<Ndr>,
}

/// One receive path at one layout and frame size.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// `recv`, `recv-batch`, `mmap`, `xdp`, `xdp-drop`, `tcpdump`, ...
    pub name: String,
    /// fastpath, peer or ceiling.
    pub kind: Kind,
    /// Rung, for peer comparisons.
    pub rung: Rung,
    /// Core layout.
    pub layout: Layout,
    /// Frame size in bytes (FCS excluded).
    pub size: usize,
    /// The filter expression the row runs with (compared only with rows running the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Packets delivered to user space per second (for the ceiling: dropped by XDP per second).
    pub pps: Pps,
    /// `--load ndr`: the median no-drop rate (the same as `pps.median`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ndr_pps: Option<f64>,
    /// Each repetition's rate, in round order.
    pub reps: Vec<f64>,
    /// Each repetition in full, with its round.
    pub per_round: Vec<Sample>,
    /// Packets the kernel (or the tool's ring) dropped, summed over the repetitions.
    pub drops: u64,
    /// `rx_dropped` of the receiving veth, summed over the repetitions.
    pub link_drops: u64,
    /// The generator's median rate during the repetitions (the offered load), frames per second.
    pub gen_pps: f64,
    /// Receiver CPU time per delivered packet, ns (median; fastpath rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ns_per_packet: Option<f64>,
    /// Packet counts per stage, summed over the repetitions.
    pub stages: Stages,
    /// The stage that lost the most packets ([`Stages::lost_at`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_at: Option<String>,
    /// Whether what no counter explains stays within [`UNACCOUNTED_LIMIT`] of what was
    /// generated (true when nothing was counted).
    pub accounted: bool,
    /// Whether a repetition lies beyond ±15 % of the median ([`stats::NOISY_SPREAD`]).
    pub noisy: bool,
    /// How the row ended.
    pub status: Status,
    /// Why it is not `ok`, or a remark about the measurement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The share of generated packets that may go unexplained before a row says so.
pub const UNACCOUNTED_LIMIT: f64 = 0.01;

impl Row {
    /// A row with no measurement yet.
    pub fn new(name: &str, kind: Kind, rung: Rung, layout: Layout, size: usize) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            rung,
            layout,
            size,
            filter: None,
            pps: Pps::default(),
            ndr_pps: None,
            reps: Vec::new(),
            per_round: Vec::new(),
            drops: 0,
            link_drops: 0,
            gen_pps: 0.0,
            cpu_ns_per_packet: None,
            stages: Stages::default(),
            lost_at: None,
            accounted: true,
            noisy: false,
            status: Status::Ok,
            note: None,
        }
    }

    /// `name layout sizeB`, e.g. `xdp one-core 64B`: how the row is named in lines of text, and
    /// the key of its bootstrap stream.
    pub fn key(&self) -> String {
        format!("{} {} {}B", self.name, self.layout.name(), self.size)
    }

    /// Fills every derived field from the repetitions (`samples`, in any order): rates with
    /// their interval (bootstrap stream from `seed` and the row's key), sums, medians, stages,
    /// `noisy`, `accounted`; `ndr`: the run searched no-drop rates.
    pub fn summarize(&mut self, mut samples: Vec<Sample>, seed: u64, ndr: bool) {
        samples.sort_by_key(|s| s.round);
        let pps: Vec<f64> = samples.iter().map(|s| s.pps).collect();
        self.pps = Pps::of(&pps, stats::key_seed(seed, &self.key()));
        self.ndr_pps = (ndr && !pps.is_empty()).then_some(self.pps.median);
        self.noisy = stats::noisy(&pps);
        self.reps = pps;
        self.drops = samples.iter().map(|s| s.drops).sum();
        self.link_drops = samples.iter().map(|s| s.link_drops).sum();
        let offered: Vec<f64> = samples.iter().map(|s| s.offered_pps).collect();
        self.gen_pps = median(&offered).unwrap_or(0.0);
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_ns).collect();
        self.cpu_ns_per_packet = median(&cpu);
        let mut stages = Stages::default();
        for s in &samples {
            stages.add(&s.stages);
        }
        self.stages = stages;
        self.lost_at = stages.lost_at().map(str::to_owned);
        self.accounted = stages.unaccounted_share() <= UNACCOUNTED_LIMIT;
        self.per_round = samples;
    }

    /// `(round, pps)` of each repetition, for pairing.
    fn rounds(&self) -> Vec<(u32, f64)> {
        self.per_round.iter().map(|s| (s.round, s.pps)).collect()
    }

    /// Measured (also partly, when interrupted).
    fn ok(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Interrupted) && !self.reps.is_empty()
    }
}

/// What a ratio compares a fastpath row with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Against {
    /// A peer tool on the same rung, layout, size and filter setting.
    Peer,
    /// The XDP_DROP ceiling at the same layout and size (unfiltered rows only).
    Ceiling,
}

/// A fastpath row against a peer (or the ceiling): the per-round ratios of their rates, their
/// median and 95 % interval, and what that says.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    /// The fastpath row's name.
    pub row: String,
    /// The row it is compared with.
    pub peer: String,
    /// Core layout of both.
    pub layout: Layout,
    /// Frame size of both.
    pub size: usize,
    /// A peer or the ceiling.
    pub against: Against,
    /// The best peer of the rung (highest median): the ratio the table shows.
    pub best: bool,
    /// Median of the per-round ratios.
    pub median: f64,
    /// 95 % interval of that median (percentile bootstrap over the rounds).
    pub ci95: [f64; 2],
    /// `ahead`/`behind` when the interval excludes 1, else `level`.
    pub verdict: Verdict,
    /// How many rounds had both rows.
    pub rounds: usize,
}

impl Ratio {
    /// `row/peer layout sizeB`, e.g. `xdp/netring-xdp one-core 64B`.
    pub fn key(&self) -> String {
        format!(
            "{}/{} {} {}B",
            self.row,
            self.peer,
            self.layout.name(),
            self.size
        )
    }
}

/// The offered load of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    /// The generator as fast as it goes (or at `--rate`).
    Max,
    /// Per row, the highest offered rate the receiver takes with at most `--loss` lost.
    Ndr,
}

/// Everything one lab run found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The generator.
    pub generator: Generator,
    /// The seed of the round order (and of the bootstrap): `--seed` repeats a run's order.
    pub seed: u64,
    /// Rounds asked for (each ran every row once, in its own random order).
    pub rounds: u32,
    /// `max` or `ndr`.
    pub load: LoadKind,
    /// `--load ndr`: the loss allowed, percent of the offered packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// Layout descriptions, in measuring order.
    pub layouts: Vec<String>,
    /// Seconds per repetition.
    pub rep_seconds: f64,
    /// Repetitions per row: the rounds (kept under this name for older scripts).
    pub repetitions: u32,
    /// Socket receive buffer of the recv rows in bytes, when not fastpath's default.
    pub rcvbuf: Option<usize>,
    /// Whether Ctrl-C (or SIGTERM) cut the run short.
    pub interrupted: bool,
    /// One row per path, layout and size.
    pub rows: Vec<Row>,
    /// Each fastpath row against every peer of its rung and against the ceiling.
    pub ratios: Vec<Ratio>,
    /// How stable the run was.
    pub stability: Stability,
}

impl Report {
    /// The JSON document (`--json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report holds only serializable values")
    }

    /// Computes what derives from the rows: the ratios (bootstrap streams from `seed`) and the
    /// stability summary.
    pub fn derive(&mut self) {
        self.ratios = ratios(&self.rows, self.seed);
        self.stability = Stability::of(&self.rows);
    }

    /// The ratio the table shows for `row`: against the best peer of its rung.
    fn best_ratio(&self, row: &Row) -> Option<&Ratio> {
        self.ratios.iter().find(|q| {
            q.best
                && q.against == Against::Peer
                && q.row == row.name
                && q.layout == row.layout
                && q.size == row.size
        })
    }
}

/// 1234567 -> "1.2M".
pub fn human(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// Test fixtures shared by the report's test modules.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// A measured row, one repetition per round 1, 2, ....
    pub(crate) fn row(name: &str, kind: Kind, rung: Rung, reps: &[f64]) -> Row {
        let mut r = Row::new(name, kind, rung, Layout::OneCore, 64);
        let samples = reps
            .iter()
            .zip(1..)
            .map(|(&pps, round)| Sample {
                round,
                pps,
                offered_pps: 9e6,
                drops: 1,
                link_drops: 0,
                cpu_ns: (kind == Kind::Fastpath).then_some(20.0),
                stages: Stages::default(),
                noise: Noise::default(),
                ndr: None,
            })
            .collect();
        r.summarize(samples, 1, false);
        r
    }

    /// A report with fastpath rows, peers, the ceiling and rows that did not run.
    pub(crate) fn report() -> Report {
        let mut xdp = Row::new("xdp", Kind::Fastpath, Rung::Xdp, Layout::OneCore, 64);
        xdp.status = Status::Unavailable;
        xdp.note = Some("not in this build".into());
        let mut nsng = Row::new("netsniff-ng", Kind::Peer, Rung::Mmap, Layout::OneCore, 64);
        nsng.status = Status::NotInstalled;
        nsng.note = Some("apt-get install netsniff-ng".into());
        let mut r = Report {
            machine: Machine {
                kernel: "6.18.0".into(),
                cpu_model: "AMD EPYC".into(),
                cores: 2,
            },
            generator: Generator {
                method: "xdp-live".into(),
                rate_pps: 9e6,
                note: None,
            },
            seed: 1,
            rounds: 3,
            load: LoadKind::Max,
            loss_pct: None,
            layouts: vec!["one-core: generator on CPU0".into()],
            rep_seconds: 1.0,
            repetitions: 3,
            rcvbuf: None,
            interrupted: false,
            rows: vec![
                row("recv", Kind::Fastpath, Rung::Recv, &[0.25e6, 0.3e6, 0.27e6]),
                row("mmap", Kind::Fastpath, Rung::Mmap, &[1.3e6, 1.4e6, 1.35e6]),
                xdp,
                row("xdp-drop", Kind::Ceiling, Rung::Kernel, &[9e6, 9e6, 9e6]),
                row("tcpdump", Kind::Peer, Rung::Mmap, &[1.0e6, 1.1e6, 0.9e6]),
                nsng,
            ],
            ratios: Vec::new(),
            stability: Stability::default(),
        };
        r.derive();
        r
    }
}

#[cfg(test)]
mod test {
    use super::fixture::{report, row};
    use super::*;

    #[test]
    fn rows_summarize_their_rounds() {
        let p = Pps::of(&[3.0, 1.0, 2.0], 1);
        assert_eq!(
            (p.median, p.min, p.max, p.ci95),
            (2.0, 1.0, 3.0, [1.0, 3.0])
        );
        assert_eq!(Pps::of(&[], 1), Pps::default());
        let r = row("mmap", Kind::Fastpath, Rung::Mmap, &[1.0e6, 1.2e6, 0.8e6]);
        assert_eq!(r.reps, vec![1.0e6, 1.2e6, 0.8e6]);
        assert_eq!(
            r.per_round.iter().map(|s| s.round).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(r.drops, 3);
        assert_eq!(r.gen_pps, 9e6);
        assert_eq!(r.cpu_ns_per_packet, Some(20.0));
        assert!(r.noisy, "0.8 is 20 % below the median");
        assert!(!row("a", Kind::Peer, Rung::Mmap, &[1.0, 1.1, 0.9]).noisy);
        assert!(r.accounted);
        assert_eq!(r.lost_at, None);
        assert_eq!(r.ndr_pps, None);
    }

    #[test]
    fn stages_are_summed_and_checked() {
        let sample = |round, delivered, socket_dropped, unaccounted| Sample {
            round,
            pps: 1.0,
            offered_pps: 1.0,
            drops: 0,
            link_drops: 0,
            cpu_ns: None,
            stages: Stages {
                generated: 1000,
                socket_dropped,
                delivered,
                unaccounted,
                ..Stages::default()
            },
            noise: Noise::default(),
            ndr: None,
        };
        let mut r = Row::new("mmap", Kind::Fastpath, Rung::Mmap, Layout::OneCore, 64);
        r.summarize(vec![sample(2, 900, 95, 5), sample(1, 990, 5, 5)], 1, true);
        assert_eq!(r.stages.generated, 2000);
        assert_eq!(r.stages.socket_dropped, 100);
        assert_eq!(r.stages.unaccounted, 10);
        assert_eq!(r.lost_at.as_deref(), Some("socket"));
        assert!(r.accounted, "0.5 % unaccounted");
        assert_eq!(r.ndr_pps, Some(1.0));
        r.summarize(vec![sample(1, 900, 50, 50)], 1, false);
        assert!(!r.accounted, "5 % unaccounted");
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(v["machine"]["cores"], 2);
        assert_eq!(v["machine"]["kernel"], "6.18.0");
        assert_eq!(v["generator"]["method"], "xdp-live");
        assert_eq!(v["generator"]["rate_pps"], 9e6);
        assert_eq!(v["seed"], 1);
        assert_eq!(v["rounds"], 3);
        assert_eq!(v["load"], "max");
        assert!(v.get("loss_pct").is_none());
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 6);
        let mmap = &rows[1];
        assert_eq!(mmap["name"], "mmap");
        assert_eq!(mmap["kind"], "fastpath");
        assert_eq!(mmap["layout"], "one-core");
        assert_eq!(mmap["size"], 64);
        assert_eq!(mmap["pps"]["median"], 1.35e6);
        assert_eq!(mmap["pps"]["min"], 1.3e6);
        assert_eq!(mmap["pps"]["max"], 1.4e6);
        assert_eq!(mmap["pps"]["ci95"], serde_json::json!([1.3e6, 1.4e6]));
        assert_eq!(mmap["per_round"][1]["round"], 2);
        assert_eq!(mmap["per_round"][1]["pps"], 1.4e6);
        assert!(mmap["per_round"][1]["stages"]["generated"].is_u64());
        assert!(mmap["per_round"][1]["noise"]["gen_cpu_steal"].is_number());
        for k in ["generated", "delivered", "unaccounted"] {
            assert!(mmap["stages"][k].is_number(), "{k}");
        }
        assert_eq!(mmap["noisy"], false);
        assert_eq!(mmap["cpu_ns_per_packet"], 20.0);
        assert_eq!(mmap["status"], "ok");
        assert_eq!(rows[2]["status"], "unavailable");
        assert_eq!(rows[3]["kind"], "ceiling");
        assert!(rows[3].get("cpu_ns_per_packet").is_none());
        assert_eq!(rows[4]["kind"], "peer");
        assert_eq!(rows[5]["status"], "not-installed");
        let ratios = v["ratios"].as_array().unwrap();
        let best = ratios
            .iter()
            .find(|q| q["row"] == "mmap" && q["peer"] == "tcpdump")
            .unwrap();
        assert_eq!(best["best"], true);
        assert_eq!(best["against"], "peer");
        assert_eq!(best["layout"], "one-core");
        assert_eq!(best["size"], 64);
        assert_eq!(best["verdict"], "ahead");
        assert!((best["median"].as_f64().unwrap() - 1.3).abs() < 1e-9);
        assert_eq!(best["ci95"].as_array().unwrap().len(), 2);
        assert_eq!(v["stability"]["rows"], 4);
    }

    #[test]
    fn human_counts() {
        assert_eq!(human(12), "12");
        assert_eq!(human(12_345), "12.3k");
        assert_eq!(human(1_234_567), "1.2M");
    }
}
