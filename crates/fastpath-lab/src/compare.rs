//! Two saved runs side by side (`fastpath lab --compare A.json B.json`): per row and per ratio
//! against the best peer, the change from A to B with its 95 % interval, so that a code change
//! (or a machine change) can be judged by anyone:
//!
//! ```text
//! xdp one-core 64B: +18% (CI +11..+25%), 0.91 -> 1.07 Mpps, up
//! ```
//!
//! The change is `median(B) / median(A) − 1`; its interval is a percentile bootstrap that
//! resamples A's rounds and B's rounds independently (the two runs are not paired). It is `up`
//! or `down` only when the interval excludes 0. Ratios are recomputed from each file's
//! per-round rates with the same code as the run's own, so both sides are computed alike.
//!
//! Sans-IO: JSON text in, a [`Comparison`] out. Files from before lab v2 (no `per_round`) are
//! read from their `reps`, numbered as rounds 1, 2, ... (their repetitions were not
//! interleaved, so their ratios pair repetitions, not rounds).

use std::fmt;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::report::{
    self, stats, Against, Kind, LoadKind, Machine, Row, Rung, Sample, Status, Verdict,
};
use crate::stages::{Noise, Stages};
use crate::testbed::Layout;

/// What `--compare` reads of a run's JSON; other fields are ignored.
#[derive(Debug, Deserialize)]
struct RunFile {
    machine: Machine,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    rounds: Option<u32>,
    #[serde(default)]
    repetitions: Option<u32>,
    #[serde(default)]
    load: Option<LoadKind>,
    rows: Vec<RowFile>,
}

#[derive(Debug, Deserialize)]
struct RowFile {
    name: String,
    kind: Kind,
    rung: Rung,
    layout: Layout,
    size: usize,
    status: Status,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    reps: Vec<f64>,
    #[serde(default)]
    per_round: Vec<RoundFile>,
}

#[derive(Debug, Deserialize)]
struct RoundFile {
    round: u32,
    pps: f64,
}

/// One side of a comparison: the run as read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    /// The name it was given (the file name).
    pub name: String,
    /// Its machine.
    pub machine: Machine,
    /// Its seed (`None`: a file from before lab v2).
    pub seed: Option<u64>,
    /// Its rounds (or repetitions).
    pub rounds: u32,
    /// Its offered load (`max` for files from before lab v2).
    pub load: LoadKind,
    /// Its measured rows, with their per-round rates.
    #[serde(skip)]
    rows: Vec<Row>,
}

impl Run {
    /// Reads a run's JSON (`name`: for messages).
    ///
    /// # Errors
    /// Not JSON, or not a `fastpath lab --json` document.
    pub fn from_json(name: &str, text: &str) -> Result<Run> {
        let f: RunFile = serde_json::from_str(text)
            .with_context(|| format!("`{name}` is not the JSON of a `fastpath lab --json` run"))?;
        let rows = f
            .rows
            .into_iter()
            .map(|r| {
                let mut row = Row::new(&r.name, r.kind, r.rung, r.layout, r.size);
                // Before lab v2 the filter was not saved; those rows were named `*-filtered`.
                row.filter = r
                    .filter
                    .or_else(|| r.name.ends_with("-filtered").then(|| "(filtered)".into()));
                let rounds: Vec<(u32, f64)> = if r.per_round.is_empty() {
                    r.reps.iter().zip(1..).map(|(&p, i)| (i, p)).collect()
                } else {
                    r.per_round.iter().map(|s| (s.round, s.pps)).collect()
                };
                let samples = rounds
                    .into_iter()
                    .map(|(round, pps)| Sample {
                        round,
                        pps,
                        offered_pps: 0.0,
                        drops: 0,
                        link_drops: 0,
                        cpu_ns: None,
                        stages: Stages::default(),
                        noise: Noise::default(),
                        ndr: None,
                    })
                    .collect();
                row.summarize(samples, f.seed.unwrap_or(0), false);
                row.status = r.status;
                row
            })
            .collect();
        Ok(Run {
            name: name.to_owned(),
            machine: f.machine,
            seed: f.seed,
            rounds: f.rounds.or(f.repetitions).unwrap_or(0),
            load: f.load.unwrap_or(LoadKind::Max),
            rows,
        })
    }

    /// Per-round rates of the measured rows, by key.
    fn row_values(&self) -> Vec<(String, Vec<f64>)> {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, Status::Ok | Status::Interrupted) && !r.reps.is_empty())
            .map(|r| (r.key(), r.reps.clone()))
            .collect()
    }

    /// Per-round ratios against a peer, by key, with whether the peer is the row's best.
    fn ratio_values(&self) -> Vec<(String, bool, Vec<f64>)> {
        let seed = self.seed.unwrap_or(0);
        report::ratios(&self.rows, seed)
            .into_iter()
            .filter(|q| q.against == Against::Peer)
            .map(|q| {
                let row = self.find(&q.row, q.layout, q.size);
                let peer = self.find(&q.peer, q.layout, q.size);
                let per_round = match (row, peer) {
                    (Some(r), Some(p)) => stats::paired_ratios(&rounds(r), &rounds(p))
                        .into_iter()
                        .map(|(_, x)| x)
                        .collect(),
                    _ => Vec::new(),
                };
                (q.key(), q.best, per_round)
            })
            .collect()
    }

    fn find(&self, name: &str, layout: Layout, size: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.name == name && r.layout == layout && r.size == size)
    }
}

fn rounds(r: &Row) -> Vec<(u32, f64)> {
    r.per_round.iter().map(|s| (s.round, s.pps)).collect()
}

/// One row's or ratio's change from A to B.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    /// `xdp one-core 64B` (a row) or `xdp/netring-xdp one-core 64B` (a ratio).
    pub key: String,
    /// Median in A (packets per second, or the ratio).
    pub a: f64,
    /// Median in B.
    pub b: f64,
    /// `b / a − 1`.
    pub change: f64,
    /// Its 95 % interval.
    pub ci95: [f64; 2],
    /// `ahead` (up), `behind` (down) or `level`, from the interval of `b / a`.
    pub verdict: Verdict,
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// The first run (the baseline).
    pub a: Run,
    /// The second run.
    pub b: Run,
    /// Rows measured in both, in A's order.
    pub rows: Vec<Change>,
    /// Ratios against the best peer (in either run) present in both.
    pub ratios: Vec<Change>,
    /// Rows measured in only one of the runs.
    pub unmatched: Vec<String>,
}

impl Comparison {
    /// Compares run `b` with run `a`.
    pub fn new(a: Run, b: Run) -> Comparison {
        let seed = a.seed.unwrap_or(0) ^ b.seed.unwrap_or(0).rotate_left(32);
        let (ra, rb) = (a.row_values(), b.row_values());
        let rows = pair(&ra, &rb, seed);
        let mut unmatched: Vec<String> = ra
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !rb.iter().any(|(kb, _)| kb == *k))
            .map(|k| format!("{k} (only in A)"))
            .collect();
        unmatched.extend(
            rb.iter()
                .map(|(k, _)| k)
                .filter(|k| !ra.iter().any(|(ka, _)| ka == *k))
                .map(|k| format!("{k} (only in B)")),
        );
        let (qa, qb) = (a.ratio_values(), b.ratio_values());
        let best = |k: &str| qa.iter().chain(&qb).any(|(key, best, _)| key == k && *best);
        let strip = |v: &[(String, bool, Vec<f64>)]| -> Vec<(String, Vec<f64>)> {
            v.iter()
                .filter(|(k, _, _)| best(k))
                .map(|(k, _, x)| (k.clone(), x.clone()))
                .collect()
        };
        let ratios = pair(&strip(&qa), &strip(&qb), seed);
        Comparison {
            a,
            b,
            rows,
            ratios,
            unmatched,
        }
    }

    /// Reads and compares two runs' JSON (`name`s: for messages).
    ///
    /// # Errors
    /// Either text is not a lab run's JSON.
    pub fn from_json(a_name: &str, a: &str, b_name: &str, b: &str) -> Result<Comparison> {
        Ok(Comparison::new(
            Run::from_json(a_name, a)?,
            Run::from_json(b_name, b)?,
        ))
    }
}

/// The changes of the keys both sides have, in `a`'s order.
fn pair(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)], seed: u64) -> Vec<Change> {
    a.iter()
        .filter_map(|(k, va)| {
            let (_, vb) = b.iter().find(|(kb, _)| kb == k)?;
            let (change, ci95) = stats::change(va, vb, stats::key_seed(seed, k))?;
            Some(Change {
                key: k.clone(),
                a: stats::median(va)?,
                b: stats::median(vb)?,
                change,
                ci95,
                verdict: Verdict::of(ci95.map(|c| c + 1.0)),
            })
        })
        .collect()
}

/// `+18%`.
fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.0}%", x * 100.0)
    } else {
        "inf".into()
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.verdict {
            Verdict::Ahead => "up",
            Verdict::Level => "level",
            Verdict::Behind => "down",
        };
        write!(
            f,
            "{}: {} (CI {}..{}), ",
            self.key,
            pct(self.change),
            pct(self.ci95[0]).trim_end_matches('%'),
            pct(self.ci95[1])
        )?;
        // Rows are rates (shown in Mpps), ratios are plain numbers.
        if self.key.contains('/') {
            write!(f, "{:.2} -> {:.2}, {word}", self.a, self.b)
        } else {
            write!(f, "{:.2} -> {:.2} Mpps, {word}", self.a / 1e6, self.b / 1e6)
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (tag, r) in [("A", &self.a), ("B", &self.b)] {
            let seed = r
                .seed
                .map_or("no seed (before lab v2)".into(), |s| format!("seed {s}"));
            let load = match r.load {
                LoadKind::Max => "load max",
                LoadKind::Ndr => "load ndr",
            };
            writeln!(
                f,
                "{tag} = {}: {} ({} CPUs), kernel {}; {} rounds, {seed}, {load}",
                r.name, r.machine.cpu_model, r.machine.cores, r.machine.kernel, r.rounds
            )?;
        }
        if self.a.machine != self.b.machine {
            writeln!(f, "note: the runs are from different machines")?;
        }
        if self.a.load != self.b.load {
            writeln!(
                f,
                "note: the runs offered different loads (max and ndr): their rates measure different things"
            )?;
        }
        writeln!(
            f,
            "change from A to B: median(B) / median(A) - 1, with its 95% CI (bootstrap over each \
             run's rounds); up/down only when the CI excludes 0"
        )?;
        writeln!(f, "\nrows (Mpps delivered):")?;
        for c in &self.rows {
            writeln!(f, "  {c}")?;
        }
        writeln!(
            f,
            "\nratios against the best peer of the rung (per-round ratios):"
        )?;
        if self.ratios.is_empty() {
            writeln!(f, "  none in both runs")?;
        }
        for c in &self.ratios {
            writeln!(f, "  {c}")?;
        }
        if !self.unmatched.is_empty() {
            writeln!(f, "\nnot measured in both: {}", self.unmatched.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn run(rows: &[(&str, &str, &[f64])], seed: u64) -> String {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, kind, reps)| {
                let rung = match *name {
                    "xdp" | "netring-xdp" => "xdp",
                    "recv" => "recv",
                    _ => "mmap",
                };
                serde_json::json!({
                    "name": name, "kind": kind, "rung": rung, "layout": "one-core",
                    "size": 64, "status": "ok",
                    "per_round": reps.iter().zip(1..).map(|(p, r)| serde_json::json!({
                        "round": r, "pps": p, "offered_pps": 9e6
                    })).collect::<Vec<_>>(),
                    "reps": reps,
                })
            })
            .collect();
        serde_json::json!({
            "machine": {"kernel": "6.18", "cpu_model": "EPYC", "cores": 2},
            "seed": seed, "rounds": 5, "load": "max", "rows": rows,
        })
        .to_string()
    }

    #[test]
    fn rows_and_ratios_change_with_intervals() {
        let a = run(
            &[
                ("xdp", "fastpath", &[1.0e6, 1.0e6, 1.0e6, 1.0e6, 1.0e6]),
                ("netring-xdp", "peer", &[1.0e6, 1.0e6, 1.0e6, 1.0e6, 1.0e6]),
                ("recv", "fastpath", &[0.3e6; 5]),
            ],
            1,
        );
        let b = run(
            &[
                ("xdp", "fastpath", &[1.18e6, 1.18e6, 1.18e6, 1.18e6, 1.18e6]),
                ("netring-xdp", "peer", &[1.0e6, 1.0e6, 1.0e6, 1.0e6, 1.0e6]),
                ("mmap", "fastpath", &[0.6e6; 5]),
            ],
            2,
        );
        let c = Comparison::from_json("a.json", &a, "b.json", &b).unwrap();
        let keys: Vec<&str> = c.rows.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["xdp one-core 64B", "netring-xdp one-core 64B"]);
        let xdp = &c.rows[0];
        assert!((xdp.change - 0.18).abs() < 1e-9);
        assert_eq!(xdp.verdict, Verdict::Ahead);
        assert_eq!(
            xdp.to_string(),
            "xdp one-core 64B: +18% (CI +18..+18%), 1.00 -> 1.18 Mpps, up"
        );
        assert_eq!(c.rows[1].verdict, Verdict::Level);
        assert_eq!(c.ratios.len(), 1);
        assert_eq!(c.ratios[0].key, "xdp/netring-xdp one-core 64B");
        assert!((c.ratios[0].change - 0.18).abs() < 1e-9);
        assert_eq!(
            c.unmatched,
            [
                "recv one-core 64B (only in A)",
                "mmap one-core 64B (only in B)"
            ]
        );
        let text = c.to_string();
        assert!(text.starts_with("A = a.json: EPYC (2 CPUs), kernel 6.18; 5 rounds, seed 1"));
        assert!(
            text.contains("  xdp/netring-xdp one-core 64B: +18% (CI +18..+18%), 1.00 -> 1.18, up")
        );
    }

    #[test]
    fn a_spread_out_change_is_level() {
        let a = run(
            &[("mmap", "fastpath", &[1.0e6, 1.3e6, 0.8e6, 1.1e6, 0.9e6])],
            1,
        );
        let b = run(
            &[("mmap", "fastpath", &[1.1e6, 0.9e6, 1.25e6, 1.0e6, 1.2e6])],
            1,
        );
        let c = Comparison::from_json("a", &a, "b", &b).unwrap();
        let m = &c.rows[0];
        assert!((m.change - 0.1).abs() < 1e-9, "{m:?}");
        assert!(m.ci95[0] < 0.0 && m.ci95[1] > 0.0, "{m:?}");
        assert_eq!(m.verdict, Verdict::Level);
        // Deterministic: the same files give the same intervals.
        assert_eq!(Comparison::from_json("a", &a, "b", &b).unwrap(), c);
    }

    #[test]
    fn files_from_before_v2_are_read_from_reps() {
        let v1 = r#"{"machine": {"kernel": "6.18", "cpu_model": "EPYC", "cores": 2},
            "generator": {"method": "xdp-live", "rate_pps": 5e6}, "layouts": [],
            "rep_seconds": 3.0, "repetitions": 3, "rcvbuf": null, "interrupted": false,
            "rows": [
              {"name": "mmap", "kind": "fastpath", "rung": "mmap", "layout": "split",
               "size": 64, "pps": {"median": 1.0, "min": 1.0, "max": 1.0},
               "reps": [1.0e6, 1.1e6, 0.9e6], "drops": 0, "link_drops": 0, "gen_pps": 1.0,
               "status": "ok"},
              {"name": "mmap-filtered", "kind": "fastpath", "rung": "mmap", "layout": "split",
               "size": 64, "reps": [1.0e5], "status": "ok"},
              {"name": "tcpdump", "kind": "peer", "rung": "mmap", "layout": "split",
               "size": 64, "reps": [1.0e6, 1.0e6, 1.0e6], "status": "ok"},
              {"name": "dpdk", "kind": "fastpath", "rung": "mmap", "layout": "split",
               "size": 64, "reps": [], "status": "unavailable", "note": "no"}
            ]}"#;
        let r = Run::from_json("old.json", v1).unwrap();
        assert_eq!((r.seed, r.rounds, r.load), (None, 3, LoadKind::Max));
        assert_eq!(r.row_values().len(), 3, "the unavailable row is left out");
        let q = r.ratio_values();
        // mmap-filtered is not compared with the unfiltered tcpdump.
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].0, "mmap/tcpdump split 64B");
        assert_eq!(q[0].2, [1.0, 1.1, 0.9]);
        let c = Comparison::new(r.clone(), r);
        assert!(c.rows.iter().all(|x| x.change == 0.0));
    }

    #[test]
    fn bad_files_name_themselves() {
        let e = Run::from_json("x.json", "{}").unwrap_err();
        assert!(format!("{e:#}").starts_with("`x.json` is not the JSON of a `fastpath lab"));
        assert!(Run::from_json("y.json", "not json").is_err());
    }
}
