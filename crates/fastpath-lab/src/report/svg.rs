//! The ladder as an SVG bar chart: one bar per measured row (its median), a whisker for the
//! 95 % interval of that median, log scale, peers beside fastpath.
//!
//! Written by hand: a few dozen lines of markup, where a plotting crate would add a large
//! dependency tree and, for text, font lookups through the system (fontconfig/freetype) that a
//! lab box or CI image may lack.

use std::fmt::Write as _;

use super::{Kind, LoadKind, Report, Row};
use crate::testbed::Layout;

impl Report {
    /// The chart (see the module docs).
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
        // Log axis from 0.01 Mpps to the next decade above the largest value (whiskers
        // included).
        let max = rows
            .iter()
            .map(|r| r.pps.median.max(r.pps.ci95[1]) / 1e6)
            .fold(0.1, f64::max);
        let (lo, hi) = (-2.0f64, max.log10().ceil().max(0.0));
        let y = |mpps: f64| top + h - (mpps.max(0.01).log10() - lo) / (hi - lo) * h;
        let what = match self.load {
            LoadKind::Max => "packets delivered to user space",
            LoadKind::Ndr => "no-drop rate",
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="20" font-size="14">fastpath lab: {what} (Mpps, log scale; whiskers: 95% CI of the median, {} rounds) - {} {}</text>"#,
            self.rounds,
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
                let [c0, c1] = r.pps.ci95.map(|c| c / 1e6);
                let yy = y(m);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} {}B {}: {m:.2} Mpps (95% CI {c0:.2}-{c1:.2}, min-max {:.2}-{:.2}){}</title></rect>"#,
                    x + 2.0,
                    bar - 4.0,
                    top + h - yy,
                    xml(&r.name),
                    r.size,
                    layout.name(),
                    r.pps.min / 1e6,
                    r.pps.max / 1e6,
                    if r.noisy { ", noisy" } else { "" }
                );
                // The whisker: a vertical line over the interval with caps at both ends.
                let (cx, y0, y1) = (x + bar / 2.0, y(c0), y(c1));
                let _ = writeln!(
                    s,
                    r##"<path class="ci" d="M{cx:.1} {y0:.1}V{y1:.1}M{:.1} {y0:.1}h8M{:.1} {y1:.1}h8" stroke="#000" fill="none"/>"##,
                    cx - 4.0,
                    cx - 4.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{m:.2}</text>"#,
                    yy.min(y1) - 3.0
                );
                let (lx, ly) = (cx + 3.0, top + h + 8.0);
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

#[cfg(test)]
mod test {
    use super::super::fixture::report;

    #[test]
    fn one_bar_and_one_whisker_per_measured_row() {
        let s = report().svg();
        assert!(s.starts_with("<svg"));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<rect").count(), 4);
        assert_eq!(s.matches(r#"class="ci""#).count(), 4);
        assert!(
            s.contains("mmap 64B one-core: 1.35 Mpps (95% CI 1.30-1.40, min-max 1.30-1.40)"),
            "{s}"
        );
        assert!(s.contains("tcpdump"));
        assert!(s.contains("one-core 64B"));
    }
}
