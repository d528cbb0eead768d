//! The lab's results and their presentation: the ratio table, the JSON document and the SVG bar
//! chart. Sans-IO: values in, strings out.

use std::fmt::Write as _;

use serde::Serialize;

use crate::testbed::Layout;

/// What the machine is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
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

/// Median, smallest and largest of the repetitions, packets per second.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Pps {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Pps {
    /// Summarizes `reps` (all zero for none).
    pub fn of(reps: &[f64]) -> Pps {
        if reps.is_empty() {
            return Pps::default();
        }
        Pps {
            median: median(reps).unwrap_or(0.0),
            min: reps.iter().copied().fold(f64::MAX, f64::min),
            max: reps.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// The median of `v`, `None` if empty.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// How a row ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Ctrl-C came before all repetitions ran (the ones that did are kept).
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
    /// Packets delivered to user space per second (for the ceiling: dropped by XDP per second).
    pub pps: Pps,
    /// Each repetition's rate.
    pub reps: Vec<f64>,
    /// Packets the kernel (or the tool's ring) dropped, summed over the repetitions.
    pub drops: u64,
    /// `rx_dropped` of the receiving veth, summed over the repetitions.
    pub link_drops: u64,
    /// The generator's median rate during the repetitions, frames per second.
    pub gen_pps: f64,
    /// Receiver CPU time per delivered packet, ns (median; fastpath rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ns_per_packet: Option<f64>,
    /// How the row ended.
    pub status: Status,
    /// Why it is not `ok`, or a remark about the measurement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Row {
    /// A row with no measurement yet.
    pub fn new(name: &str, kind: Kind, rung: Rung, layout: Layout, size: usize) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            rung,
            layout,
            size,
            pps: Pps::default(),
            reps: Vec::new(),
            drops: 0,
            link_drops: 0,
            gen_pps: 0.0,
            cpu_ns_per_packet: None,
            status: Status::Ok,
            note: None,
        }
    }

    fn ok(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Interrupted) && !self.reps.is_empty()
    }
}

/// Everything one lab run found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The generator.
    pub generator: Generator,
    /// Layout descriptions, in measuring order.
    pub layouts: Vec<String>,
    /// Seconds per repetition.
    pub rep_seconds: f64,
    /// Repetitions per row.
    pub repetitions: u32,
    /// Socket receive buffer of the recv rows in bytes, when not fastpath's default.
    pub rcvbuf: Option<usize>,
    /// Whether Ctrl-C (or SIGTERM) cut the run short.
    pub interrupted: bool,
    /// One row per path, layout and size.
    pub rows: Vec<Row>,
}

impl Report {
    /// The JSON document (`--json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report holds only serializable values")
    }

    fn find(&self, layout: Layout, size: usize, name: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.layout == layout && r.size == size && r.name == name && r.ok())
    }

    /// The best (highest median) measured peer on `row`'s rung, layout and size.
    fn best_peer(&self, row: &Row) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| {
                r.kind == Kind::Peer
                    && r.rung == row.rung
                    && r.layout == row.layout
                    && r.size == row.size
                    && r.ok()
            })
            .max_by(|a, b| a.pps.median.total_cmp(&b.pps.median))
    }

    /// The ratio table, one block per layout.
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
            let _ = writeln!(
                out,
                "{:<18} {:>5}  {:<22} {:>6} {:>7}  {:<24} {:>6} {:>8} {:>6}  status",
                "path",
                "size",
                "Mpps median (min-max)",
                "x recv",
                "% ceil",
                "x best peer same rung",
                "ns/pkt",
                "drops",
                "gen",
            );
            for r in self.rows.iter().filter(|r| r.layout == *layout) {
                out.push_str(&self.table_line(r));
                out.push('\n');
            }
        }
        out
    }

    fn table_line(&self, r: &Row) -> String {
        let size = format!("{}B", r.size);
        if !r.ok() {
            let note = r.note.as_deref().unwrap_or("");
            return format!(
                "{:<18} {:>5}  {:<22} {:>6} {:>7}  {:<24} {:>6} {:>8} {:>6}  {}{}{}",
                r.name,
                size,
                "-",
                "",
                "",
                "",
                "",
                "",
                "",
                r.status.label(),
                if note.is_empty() { "" } else { ": " },
                note
            );
        }
        let mpps = format!(
            "{:.2} ({:.2}-{:.2})",
            r.pps.median / 1e6,
            r.pps.min / 1e6,
            r.pps.max / 1e6
        );
        let ratio = |base: Option<&Row>| -> Option<f64> {
            base.filter(|b| b.pps.median > 0.0)
                .map(|b| r.pps.median / b.pps.median)
        };
        let x_recv =
            ratio(self.find(r.layout, r.size, "recv")).map_or("-".into(), |x| format!("{x:.2}"));
        let ceil = ratio(self.find(r.layout, r.size, "xdp-drop"))
            .map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
        let peer = if r.kind == Kind::Fastpath {
            self.best_peer(r).map_or("-".into(), |p| {
                format!("{:.2} ({})", r.pps.median / p.pps.median.max(1.0), p.name)
            })
        } else {
            "-".into()
        };
        let cpu = r
            .cpu_ns_per_packet
            .map_or("-".into(), |c| format!("{c:.0}"));
        let status = match (&r.status, &r.note) {
            (s, Some(n)) => format!("{}: {n}", s.label()),
            (s, None) => s.label().to_owned(),
        };
        format!(
            "{:<18} {:>5}  {:<22} {:>6} {:>7}  {:<24} {:>6} {:>8} {:>6}  {}",
            r.name,
            size,
            mpps,
            x_recv,
            ceil,
            peer,
            cpu,
            human(r.drops),
            format!("{:.2}", r.gen_pps / 1e6),
            status
        )
    }

    /// The ladder as an SVG bar chart, log scale, peers beside fastpath.
    ///
    /// Written by hand: a few dozen lines of markup, where a plotting crate would add a large
    /// dependency tree and, for text, font lookups through the system (fontconfig/freetype)
    /// that a lab box or CI image may lack.
    pub fn svg(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.ok()).collect();
        let mut groups: Vec<(Layout, usize)> = Vec::new();
        for r in &rows {
            if !groups.contains(&(r.layout, r.size)) {
                groups.push((r.layout, r.size));
            }
        }
        let (bar, gap, left, top, h) = (26.0, 30.0, 70.0, 40.0, 300.0);
        let bars = rows.len() as f64;
        let width = left + bars * bar + groups.len() as f64 * gap + 20.0;
        let height = top + h + 150.0;
        // Log axis from 0.01 Mpps to the next decade above the largest value.
        let max = rows.iter().map(|r| r.pps.median / 1e6).fold(0.1, f64::max);
        let (lo, hi) = (-2.0f64, max.log10().ceil().max(0.0));
        let y = |mpps: f64| top + h - (mpps.max(0.01).log10() - lo) / (hi - lo) * h;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="20" font-size="14">fastpath lab: packets delivered to user space (Mpps, log scale) - {} {}</text>"#,
            xml(&self.machine.cpu_model),
            xml(&self.machine.kernel)
        );
        let mut d = lo as i32;
        while f64::from(d) <= hi {
            let v = 10f64.powi(d);
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{:.0}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
                width - 10.0,
                left - 6.0,
                yy + 4.0,
                if v < 1.0 {
                    format!("{v}")
                } else {
                    format!("{v:.0}")
                }
            );
            d += 1;
        }
        let mut x = left + gap / 2.0;
        for &(layout, size) in &groups {
            let x0 = x;
            for r in rows.iter().filter(|r| r.layout == layout && r.size == size) {
                let color = match r.kind {
                    Kind::Fastpath => "#1f77b4",
                    Kind::Peer => "#ff7f0e",
                    Kind::Ceiling => "#7f7f7f",
                };
                let m = r.pps.median / 1e6;
                let yy = y(m);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} {}B {}: {m:.2} Mpps</title></rect>"#,
                    x + 2.0,
                    bar - 4.0,
                    top + h - yy,
                    xml(&r.name),
                    r.size,
                    layout.name()
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{m:.2}</text>"#,
                    x + bar / 2.0,
                    yy - 3.0
                );
                let (lx, ly) = (x + bar / 2.0 + 3.0, top + h + 8.0);
                let _ = writeln!(
                    s,
                    r#"<text x="{lx:.1}" y="{ly:.1}" transform="rotate(60 {lx:.1} {ly:.1})">{}</text>"#,
                    xml(&r.name)
                );
                x += bar;
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{} {}B</text>"#,
                (x0 + x) / 2.0,
                height - 10.0,
                layout.name(),
                size
            );
            x += gap;
        }
        s.push_str("</svg>\n");
        s
    }
}

/// `&`, `<`, `>` and quotes escaped for SVG text.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 1234567 -> "1.2M".
pub fn human(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn row(name: &str, kind: Kind, rung: Rung, reps: &[f64]) -> Row {
        let mut r = Row::new(name, kind, rung, Layout::OneCore, 64);
        r.reps = reps.to_vec();
        r.pps = Pps::of(reps);
        r.gen_pps = 9e6;
        if kind == Kind::Fastpath {
            r.cpu_ns_per_packet = Some(20.0);
        }
        r
    }

    fn report() -> Report {
        let mut xdp = Row::new("xdp", Kind::Fastpath, Rung::Xdp, Layout::OneCore, 64);
        xdp.status = Status::Unavailable;
        xdp.note = Some("not in this build".into());
        let mut nsng = Row::new("netsniff-ng", Kind::Peer, Rung::Mmap, Layout::OneCore, 64);
        nsng.status = Status::NotInstalled;
        nsng.note = Some("apt-get install netsniff-ng".into());
        Report {
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
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let p = Pps::of(&[3.0, 1.0, 2.0]);
        assert_eq!((p.median, p.min, p.max), (2.0, 1.0, 3.0));
        assert_eq!(Pps::of(&[]), Pps::default());
    }

    #[test]
    fn table_has_ratios_and_statuses() {
        let t = report().table();
        let line = |name: &str| {
            t.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no line for {name} in\n{t}"))
                .to_owned()
        };
        assert!(t.starts_with("layout one-core"), "{t}");
        let mmap = line("mmap");
        assert!(mmap.contains("1.35 (1.30-1.40)"), "{mmap}");
        assert!(mmap.contains(" 5.00 "), "ratio to recv: {mmap}");
        assert!(mmap.contains("15.0%"), "% of ceiling: {mmap}");
        assert!(
            mmap.contains("1.35 (tcpdump)"),
            "ratio to best peer: {mmap}"
        );
        assert!(mmap.contains(" 20 "), "cpu ns: {mmap}");
        assert!(line("recv").contains(" 1.00 "));
        assert!(line("xdp").contains("unavailable: not in this build"));
        assert!(line("netsniff-ng").contains("not installed: apt-get install netsniff-ng"));
        // A peer is not compared with peers.
        assert!(line("tcpdump").contains(" - "));
    }

    #[test]
    fn best_peer_is_per_rung_and_includes_netring() {
        let mut r = report();
        r.rows[2] = row("xdp", Kind::Fastpath, Rung::Xdp, &[3.0e6, 3.1e6, 2.9e6]);
        r.rows.push(row(
            "netring-v3",
            Kind::Peer,
            Rung::Mmap,
            &[1.2e6, 1.25e6, 1.3e6],
        ));
        r.rows
            .push(row("testpmd-af_xdp", Kind::Peer, Rung::Xdp, &[2.0e6; 3]));
        r.rows.push(row(
            "netring-xdp",
            Kind::Peer,
            Rung::Xdp,
            &[2.5e6, 2.4e6, 2.6e6],
        ));
        let t = r.table();
        let line = |name: &str| {
            t.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no line for {name} in\n{t}"))
                .to_owned()
        };
        // mmap 1.35 vs the best AF_PACKET peer, netring-v3 at 1.25 (tcpdump: 1.0).
        assert!(line("mmap").contains("1.08 (netring-v3)"), "{t}");
        // xdp 3.0 vs the best AF_XDP peer, netring-xdp at 2.5 (not the AF_PACKET ones).
        assert!(line("xdp").contains("1.20 (netring-xdp)"), "{t}");
        assert!(line("netring-xdp").contains("2.50 (2.40-2.60)"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let nx = &v["rows"].as_array().unwrap()[8];
        assert_eq!(
            (nx["name"].as_str(), nx["kind"].as_str()),
            (Some("netring-xdp"), Some("peer"))
        );
        assert_eq!(nx["rung"], "xdp");
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(v["machine"]["cores"], 2);
        assert_eq!(v["machine"]["kernel"], "6.18.0");
        assert_eq!(v["generator"]["method"], "xdp-live");
        assert_eq!(v["generator"]["rate_pps"], 9e6);
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
        assert_eq!(mmap["cpu_ns_per_packet"], 20.0);
        assert_eq!(mmap["status"], "ok");
        assert_eq!(rows[2]["status"], "unavailable");
        assert_eq!(rows[3]["kind"], "ceiling");
        assert!(rows[3].get("cpu_ns_per_packet").is_none());
        assert_eq!(rows[4]["kind"], "peer");
        assert_eq!(rows[5]["status"], "not-installed");
    }

    #[test]
    fn svg_has_one_bar_per_measured_row() {
        let s = report().svg();
        assert!(s.starts_with("<svg"));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<rect").count(), 4);
        assert!(s.contains("tcpdump"));
        assert!(s.contains("one-core 64B"));
    }

    #[test]
    fn human_counts() {
        assert_eq!(human(12), "12");
        assert_eq!(human(12_345), "12.3k");
        assert_eq!(human(1_234_567), "1.2M");
    }
}
