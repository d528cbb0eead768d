//! The text table (one block per layout, one part per frame size) and the stability line.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use super::stats::{self, NOISY_SPREAD};
use super::{Kind, LoadKind, Report, Row, UNACCOUNTED_LIMIT};
use crate::testbed::Layout;

/// How stable a run was, from its measured rows.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stability {
    /// Measured rows.
    pub rows: usize,
    /// The rows flagged `noisy` (`name layout sizeB`).
    pub noisy: Vec<String>,
    /// The median over the rows of each row's spread (largest distance of a repetition from
    /// the row's median, as a share of it).
    pub median_spread: f64,
    /// The largest share of a repetition's window the hypervisor stole from the generator's or
    /// the receiver's CPU.
    pub max_steal: f64,
    /// The rows with more than 1 % of their generated packets unexplained.
    pub unaccounted: Vec<String>,
}

impl Stability {
    /// The summary of `rows` (those measured).
    pub fn of(rows: &[Row]) -> Stability {
        let measured: Vec<&Row> = rows.iter().filter(|r| r.ok()).collect();
        let spreads: Vec<f64> = measured.iter().map(|r| stats::spread(&r.reps)).collect();
        let max_steal = measured
            .iter()
            .flat_map(|r| &r.per_round)
            .map(|s| s.noise.gen_cpu_steal.max(s.noise.rx_cpu_steal))
            .fold(0.0, f64::max);
        Stability {
            rows: measured.len(),
            noisy: measured
                .iter()
                .filter(|r| r.noisy)
                .map(|r| r.key())
                .collect(),
            median_spread: stats::median(&spreads).unwrap_or(0.0),
            max_steal,
            unaccounted: measured
                .iter()
                .filter(|r| !r.accounted)
                .map(|r| r.key())
                .collect(),
        }
    }
}

impl fmt::Display for Stability {
    /// One line: `stability: 24 of 26 rows within ±15% of their median (noisy: ...); median
    /// spread ±4%; CPU steal up to 0.3%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stability: {} of {} rows within ±{:.0}% of their median",
            self.rows - self.noisy.len(),
            self.rows,
            NOISY_SPREAD * 100.0
        )?;
        if !self.noisy.is_empty() {
            write!(f, " (noisy: {})", list(&self.noisy))?;
        }
        write!(
            f,
            "; median spread ±{:.0}%; CPU steal up to {:.1}%",
            self.median_spread * 100.0,
            self.max_steal * 100.0
        )?;
        if !self.unaccounted.is_empty() {
            write!(
                f,
                "; more than {:.0}% of packets unaccounted in: {}",
                UNACCOUNTED_LIMIT * 100.0,
                list(&self.unaccounted)
            )?;
        }
        Ok(())
    }
}

/// Up to [`LISTED`] names, then how many more: the line stays one line.
fn list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        let _ = write!(s, " and {} more", names.len() - LISTED);
    }
    s
}

/// Names a stability line lists before it counts.
const LISTED: usize = 4;

/// How a column is aligned.
#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

const COLUMNS: [Align; 7] = [
    Align::Left,  // path
    Align::Left,  // rate [CI]
    Align::Left,  // x best peer [CI] verdict peer
    Align::Right, // offered
    Align::Right, // ns/pkt
    Align::Left,  // lost at
    Align::Left,  // status (not padded)
];

/// One line of cells, two spaces apart, each padded to its width but the last.
fn render(cells: &[(&str, usize, Align)]) -> String {
    let mut line = String::new();
    for (i, &(c, w, align)) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = if i + 1 == cells.len() {
            0
        } else {
            w.saturating_sub(c.chars().count())
        };
        if align == Align::Right {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        line.push_str(c);
        if align == Align::Left {
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.trim_end().to_owned()
}

impl Report {
    /// The table, one block per layout and within it one part per frame size:
    ///
    /// ```text
    /// layout one-core: generator on CPU0; receiver and the fplr0 NAPI kthread on CPU1
    /// path (64B)  Mpps [95% CI]     x best peer [95% CI]              offered  ns/pkt  lost at  status
    /// mmap        0.63 [0.61-0.64]  0.59 [0.55-0.62] behind netring-v3   4.97      51  socket   ok
    /// ```
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut layouts: Vec<Layout> = Vec::new();
        for r in &self.rows {
            if !layouts.contains(&r.layout) {
                layouts.push(r.layout);
            }
        }
        for (li, layout) in layouts.iter().enumerate() {
            let desc = self
                .layouts
                .iter()
                .find(|d| d.starts_with(layout.name()))
                .cloned()
                .unwrap_or_else(|| layout.name().to_owned());
            if li > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "layout {desc}");
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.layout == *layout).collect();
            let mut sizes: Vec<usize> = Vec::new();
            for r in &rows {
                if !sizes.contains(&r.size) {
                    sizes.push(r.size);
                }
            }
            // One set of widths per layout block, so its parts line up. A row that did not run
            // says why right after its name and `-`, whatever the widths.
            let mut lines: Vec<[String; 7]> = Vec::new();
            for &size in &sizes {
                lines.push(self.header(size));
                for r in rows.iter().filter(|r| r.size == size) {
                    lines.push(self.cells(r));
                }
            }
            let spans = |l: &[String; 7]| l[2].is_empty() && !l[6].is_empty();
            let mut width = [0usize; 7];
            for l in &lines {
                let n = if spans(l) { 2 } else { 7 };
                for (w, c) in width.iter_mut().zip(l).take(n) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for l in &lines {
                let cells: Vec<(&str, usize, Align)> = if spans(l) {
                    vec![
                        (&l[0], width[0], COLUMNS[0]),
                        (&l[1], width[1], COLUMNS[1]),
                        (&l[6], 0, COLUMNS[6]),
                    ]
                } else {
                    (0..7)
                        .map(|i| (l[i].as_str(), width[i], COLUMNS[i]))
                        .collect()
                };
                out.push_str(&render(&cells));
                out.push('\n');
            }
        }
        out
    }

    fn header(&self, size: usize) -> [String; 7] {
        let rate = match self.load {
            LoadKind::Max => "Mpps [95% CI]",
            LoadKind::Ndr => "NDR Mpps [95% CI]",
        };
        [
            format!("path ({size}B)"),
            rate.into(),
            "x best peer [95% CI]".into(),
            "offered".into(),
            "ns/pkt".into(),
            "lost at".into(),
            "status".into(),
        ]
    }

    fn cells(&self, r: &Row) -> [String; 7] {
        if !r.ok() {
            let note = r
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(": {n}"));
            return [
                r.name.clone(),
                "-".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("{}{note}", r.status.label()),
            ];
        }
        let mpps = |x: f64| x / 1e6;
        let rate = format!(
            "{:.2} [{:.2}-{:.2}]",
            mpps(r.pps.median),
            mpps(r.pps.ci95[0]),
            mpps(r.pps.ci95[1])
        );
        let peer = match (r.kind, self.best_ratio(r)) {
            (Kind::Fastpath, Some(q)) => format!(
                "{:.2} [{:.2}-{:.2}] {} {}",
                q.median,
                q.ci95[0],
                q.ci95[1],
                q.verdict.name(),
                q.peer
            ),
            _ => "-".into(),
        };
        let cpu = r
            .cpu_ns_per_packet
            .map_or("-".into(), |c| format!("{c:.0}"));
        let mut status = vec![r.status.label().to_owned()];
        if r.noisy {
            status.push("noisy".into());
        }
        if !r.accounted {
            status.push(format!(
                "unaccounted {:.1}% of generated",
                r.stages.unaccounted_share() * 100.0
            ));
        }
        let mut status = status.join(", ");
        if let Some(n) = &r.note {
            let _ = write!(status, ": {n}");
        }
        [
            r.name.clone(),
            rate,
            peer,
            format!("{:.2}", mpps(r.gen_pps)),
            cpu,
            r.lost_at.clone().unwrap_or_else(|| "-".into()),
            status,
        ]
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{report, row};
    use super::super::{Rung, Sample};
    use super::*;
    use crate::stages::{Noise, Stages};

    fn line(t: &str, name: &str) -> String {
        t.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{t}"))
            .to_owned()
    }

    #[test]
    fn table_has_intervals_ratios_and_statuses() {
        let t = report().table();
        assert!(t.starts_with("layout one-core"), "{t}");
        assert!(t.contains("path (64B)"), "{t}");
        let mmap = line(&t, "mmap");
        assert!(mmap.contains("1.35 [1.30-1.40]"), "{mmap}");
        // Per round 1.3/1.0, 1.4/1.1, 1.35/0.9: median 1.30, all above 1.
        assert!(mmap.contains("1.30 [1.27-1.50] ahead tcpdump"), "{mmap}");
        assert!(mmap.contains(" 20 "), "cpu ns: {mmap}");
        assert!(mmap.contains(" 9.00 "), "offered: {mmap}");
        assert!(mmap.ends_with(" ok"), "{mmap}");
        assert!(line(&t, "xdp").contains("unavailable: not in this build"));
        assert!(line(&t, "netsniff-ng").contains("not installed: apt-get install netsniff-ng"));
        // A peer is not compared with peers; recv has none on its rung.
        assert!(line(&t, "tcpdump").contains(" - "));
        assert!(line(&t, "recv").contains(" - "));
        // Measured rows fit 100 columns (a row that did not run says why at the end).
        for l in t
            .lines()
            .filter(|l| l.ends_with(" ok") || l.starts_with("path"))
        {
            assert!(
                l.chars().count() <= 100,
                "{} columns: {l}",
                l.chars().count()
            );
        }
        println!("{t}");
    }

    #[test]
    fn the_table_flags_noise_and_losses() {
        let mut r = report();
        r.rows[1] = row("mmap", Kind::Fastpath, Rung::Mmap, &[1.0e6, 1.3e6, 1.0e6]);
        r.rows[1].per_round[0].stages = Stages {
            generated: 1000,
            socket_dropped: 30,
            delivered: 900,
            unaccounted: 70,
            ..Stages::default()
        };
        let samples = r.rows[1].per_round.clone();
        r.rows[1].summarize(samples, 1, false);
        r.derive();
        let t = r.table();
        let mmap = line(&t, "mmap");
        assert!(
            mmap.contains("ok, noisy, unaccounted 7.0% of generated"),
            "{mmap}"
        );
        assert!(mmap.contains(" unaccounted "), "lost at: {mmap}");
        let s = r.stability.to_string();
        assert!(
            s.starts_with(
                "stability: 3 of 4 rows within ±15% of their median (noisy: mmap one-core 64B)"
            ),
            "{s}"
        );
        assert!(s.contains("unaccounted in: mmap one-core 64B"), "{s}");
    }

    #[test]
    fn ndr_runs_say_so() {
        let mut r = report();
        r.load = LoadKind::Ndr;
        assert!(r.table().contains("NDR Mpps [95% CI]"));
    }

    #[test]
    fn long_lists_are_cut() {
        let names: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        assert_eq!(list(&names[..2]), "r0, r1");
        assert_eq!(list(&names), "r0, r1, r2, r3 and 2 more");
    }

    #[test]
    fn stability_reads_steal_and_spread() {
        let mut rows = vec![
            row("a", Kind::Peer, Rung::Mmap, &[1.0, 1.1, 0.9]),
            row("b", Kind::Peer, Rung::Mmap, &[1.0, 1.02, 0.98]),
        ];
        rows[0].per_round[1] = Sample {
            noise: Noise {
                rx_cpu_steal: 0.004,
                ..Noise::default()
            },
            ..rows[0].per_round[1].clone()
        };
        let s = Stability::of(&rows);
        assert_eq!(s.rows, 2);
        assert!(s.noisy.is_empty());
        assert!((s.median_spread - 0.06).abs() < 1e-9);
        assert_eq!(s.max_steal, 0.004);
        assert_eq!(
            s.to_string(),
            "stability: 2 of 2 rows within ±15% of their median; median spread ±6%; CPU steal up to 0.4%"
        );
    }
}
