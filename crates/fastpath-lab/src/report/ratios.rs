//! Which rows are compared with which. A fastpath row is compared with every measured peer on
//! its rung, at its layout and frame size, running the same filter (none, for every peer
//! today: a filtered row has no peer), and, when it is unfiltered, with the XDP_DROP ceiling.
//! The peer with the highest median is the row's *best peer*, the one the table shows.

use super::stats::{self, Verdict};
use super::{Against, Kind, Ratio, Row};

/// Every ratio of `rows`, in row order (best peer first within a row, the ceiling last);
/// bootstrap streams from `seed` and each ratio's key.
pub fn ratios(rows: &[Row], seed: u64) -> Vec<Ratio> {
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.kind == Kind::Fastpath && r.ok()) {
        let same = |p: &&Row| p.layout == r.layout && p.size == r.size && p.ok();
        let mut peers: Vec<&Row> = rows
            .iter()
            .filter(same)
            .filter(|p| p.kind == Kind::Peer && p.rung == r.rung && p.filter == r.filter)
            .collect();
        // Best first; ties keep table order.
        peers.sort_by(|a, b| b.pps.median.total_cmp(&a.pps.median));
        let ceiling = rows
            .iter()
            .filter(same)
            .find(|p| p.kind == Kind::Ceiling && r.filter.is_none());
        let against = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, Against::Peer, i == 0))
            .chain(ceiling.map(|c| (c, Against::Ceiling, false)));
        for (p, against, best) in against {
            if let Some(q) = ratio(r, p, against, best, seed) {
                out.push(q);
            }
        }
    }
    out
}

/// `r` against `p`, paired by round; `None` when no round had both.
fn ratio(r: &Row, p: &Row, against: Against, best: bool, seed: u64) -> Option<Ratio> {
    let per_round: Vec<f64> = stats::paired_ratios(&r.rounds(), &p.rounds())
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    let median = stats::median(&per_round)?;
    let mut q = Ratio {
        row: r.name.clone(),
        peer: p.name.clone(),
        layout: r.layout,
        size: r.size,
        against,
        best,
        median,
        ci95: [0.0, 0.0],
        verdict: Verdict::Level,
        rounds: per_round.len(),
    };
    q.ci95 = stats::median_ci(&per_round, stats::key_seed(seed, &q.key()))?;
    q.verdict = Verdict::of(q.ci95);
    Some(q)
}

#[cfg(test)]
mod test {
    use super::super::fixture::row;
    use super::super::{Rung, Status};
    use super::*;
    use crate::testbed::Layout;

    fn find<'a>(qs: &'a [Ratio], row: &str, peer: &str) -> Option<&'a Ratio> {
        qs.iter().find(|q| q.row == row && q.peer == peer)
    }

    #[test]
    fn same_rung_layout_size_and_filter_only() {
        let mut filtered = row("mmap-filtered", Kind::Fastpath, Rung::Mmap, &[0.1e6; 3]);
        filtered.filter = Some("udp src port 1024".into());
        let mut split_peer = row("tcpdump", Kind::Peer, Rung::Mmap, &[5e6; 3]);
        split_peer.layout = Layout::Split;
        let mut big_peer = row("netsniff-ng", Kind::Peer, Rung::Mmap, &[5e6; 3]);
        big_peer.size = 100;
        let mut failed_peer = row("netring-v3", Kind::Peer, Rung::Mmap, &[5e6; 3]);
        failed_peer.status = Status::Failed;
        let rows = vec![
            row("mmap", Kind::Fastpath, Rung::Mmap, &[1.3e6, 1.4e6, 1.35e6]),
            row("xdp", Kind::Fastpath, Rung::Xdp, &[3e6, 3.1e6, 2.9e6]),
            row("recv", Kind::Fastpath, Rung::Recv, &[0.3e6; 3]),
            filtered,
            row("tcpdump", Kind::Peer, Rung::Mmap, &[1.0e6, 1.1e6, 0.9e6]),
            row("testpmd-af_packet", Kind::Peer, Rung::Mmap, &[0.3e6; 3]),
            row("netring-xdp", Kind::Peer, Rung::Xdp, &[2.5e6, 2.4e6, 2.6e6]),
            split_peer,
            big_peer,
            failed_peer,
            row("xdp-drop", Kind::Ceiling, Rung::Kernel, &[6e6; 3]),
        ];
        let qs = ratios(&rows, 1);
        let names: Vec<String> = qs.iter().map(Ratio::key).collect();
        assert_eq!(
            names,
            [
                "mmap/tcpdump one-core 64B",
                "mmap/testpmd-af_packet one-core 64B",
                "mmap/xdp-drop one-core 64B",
                "xdp/netring-xdp one-core 64B",
                "xdp/xdp-drop one-core 64B",
                "recv/xdp-drop one-core 64B",
            ]
        );
        let best = find(&qs, "mmap", "tcpdump").unwrap();
        assert!(best.best && best.against == Against::Peer);
        assert!(!find(&qs, "mmap", "testpmd-af_packet").unwrap().best);
        let ceil = find(&qs, "mmap", "xdp-drop").unwrap();
        assert!(!ceil.best && ceil.against == Against::Ceiling);
        assert_eq!(ceil.verdict, Verdict::Behind);
        // Per round: 3.0/2.5, 3.1/2.4, 2.9/2.6.
        let x = find(&qs, "xdp", "netring-xdp").unwrap();
        assert!((x.median - 1.2).abs() < 1e-12, "{x:?}");
        assert_eq!(x.verdict, Verdict::Ahead);
        assert_eq!(x.rounds, 3);
        assert!(find(&qs, "mmap-filtered", "tcpdump").is_none());
        assert!(find(&qs, "mmap-filtered", "xdp-drop").is_none());
    }

    #[test]
    fn pairs_are_taken_within_a_round() {
        // Both drift the same way over the rounds: per-round ratios are steady at 1.1 even
        // though the rows' own intervals overlap.
        let rows = vec![
            row(
                "mmap",
                Kind::Fastpath,
                Rung::Mmap,
                &[1.1, 2.2, 3.3, 4.4, 5.5],
            ),
            row(
                "tcpdump",
                Kind::Peer,
                Rung::Mmap,
                &[1.0, 2.0, 3.0, 4.0, 5.0],
            ),
        ];
        let q = &ratios(&rows, 1)[0];
        assert!((q.median - 1.1).abs() < 1e-12);
        assert!((q.ci95[0] - 1.1).abs() < 1e-12 && (q.ci95[1] - 1.1).abs() < 1e-12);
        assert_eq!(q.verdict, Verdict::Ahead);
        // An interrupted peer: only the rounds it ran are paired.
        let mut short = row("tcpdump", Kind::Peer, Rung::Mmap, &[1.0, 2.0]);
        short.status = Status::Interrupted;
        let q = &ratios(&[rows[0].clone(), short], 1)[0];
        assert_eq!(q.rounds, 2);
    }
}
