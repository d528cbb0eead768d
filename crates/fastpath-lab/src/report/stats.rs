//! The lab's statistics, sans-IO and deterministic: a seeded PRNG (the round order and the
//! bootstrap), medians, percentile bootstrap confidence intervals, paired ratios and their
//! verdicts, and the spread that flags a row `noisy`.
//!
//! Why these choices:
//! - **Medians**, not means: one repetition hit by a hypervisor hiccup moves a mean, not a
//!   median.
//! - **Percentile bootstrap over rounds** ([`RESAMPLES`] resamples): it needs no assumption
//!   about the distribution of packet rates, and with the few rounds a lab runs (3 to 10) it is
//!   honest about how little they say (with 5 rounds the 95 % interval of a median is the
//!   smallest to the largest value).
//! - **Paired ratios**: a fastpath row and its peer ran in the same round, minutes apart at
//!   most, so the ratio of the two is taken per round first; drift that moves both cancels.
//! - **Seeded**: the same numbers and seed give the same intervals, so a report recomputed from
//!   its JSON matches the one printed.

use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;

/// A row whose repetitions leave `median × (1 ± NOISY_SPREAD)` is `noisy`.
pub const NOISY_SPREAD: f64 = 0.15;

/// SplitMix64 (Steele, Lea, Flood 2014): 64 bits of state, passes BigCrush, and a few lines
/// instead of a dependency. Not for secrets: for shuffling rows and resampling rounds.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` without modulo bias (Lemire's multiply-and-reject). `n` must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0): the range must not be empty");
        let n = n as u64;
        // 2^64 mod n: products whose low half falls below it would make some values likelier.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// Fisher–Yates: every order of `v` equally likely.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A seed derived from `seed` and `key` (FNV-1a of the key, mixed through SplitMix64), so that
/// each row's or ratio's bootstrap has its own stream, independent of the order they are
/// computed in.
pub fn key_seed(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    Rng::new(seed ^ h).next_u64()
}

/// The median of `v` (mean of the middle two for an even count), `None` if empty.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    Some(median_in_place(&mut s))
}

/// The median of a non-empty slice, sorting it.
fn median_in_place(s: &mut [f64]) -> f64 {
    s.sort_unstable_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The `p` quantile (0..=1) of sorted values, linearly interpolated between the two nearest
/// ranks (Hyndman and Fan's type 7, R's default).
fn quantile_sorted(s: &[f64], p: f64) -> f64 {
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    if s[lo] == s[hi] {
        // Also keeps an infinite value infinite (inf − inf would be NaN).
        return s[lo];
    }
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// The 2.5 % and 97.5 % quantiles of `stats` (sorted here).
fn percentile_95(mut stats: Vec<f64>) -> [f64; 2] {
    stats.sort_unstable_by(f64::total_cmp);
    [
        quantile_sorted(&stats, 0.025),
        quantile_sorted(&stats, 0.975),
    ]
}

/// `v` resampled with replacement into `buf` (same length).
fn resample(rng: &mut Rng, v: &[f64], buf: &mut Vec<f64>) {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.below(v.len())]));
}

/// 95 % percentile-bootstrap interval of the median of `v` ([`RESAMPLES`] resamples drawn from
/// `seed`). `None` if `v` is empty; one value gives `[v, v]`.
pub fn median_ci(v: &[f64], seed: u64) -> Option<[f64; 2]> {
    if v.is_empty() {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut buf = Vec::with_capacity(v.len());
    let stats = (0..RESAMPLES)
        .map(|_| {
            resample(&mut rng, v, &mut buf);
            median_in_place(&mut buf)
        })
        .collect();
    Some(percentile_95(stats))
}

/// The relative change from run `a` to run `b`, `median(b) / median(a) − 1`, and its 95 %
/// percentile-bootstrap interval, the two runs resampled independently (they are not paired:
/// different times, maybe different builds). `None` if either is empty or `a`'s median is not
/// positive.
pub fn change(a: &[f64], b: &[f64], seed: u64) -> Option<(f64, [f64; 2])> {
    let (ma, mb) = (median(a)?, median(b)?);
    if ma <= 0.0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let (mut ba, mut bb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let stats = (0..RESAMPLES)
        .map(|_| {
            resample(&mut rng, a, &mut ba);
            resample(&mut rng, b, &mut bb);
            let da = median_in_place(&mut ba);
            // A resample of a with median 0 (only possible with zeros in a): no finite change.
            if da > 0.0 {
                median_in_place(&mut bb) / da - 1.0
            } else {
                f64::INFINITY
            }
        })
        .collect();
    Some((mb / ma - 1.0, percentile_95(stats)))
}

/// Per-round ratios `a / b` over the rounds both have (and where `b` delivered anything), in
/// round order. Inputs: `(round, value)`.
pub fn paired_ratios(a: &[(u32, f64)], b: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = a
        .iter()
        .filter_map(|&(r, x)| {
            b.iter()
                .find(|&&(rb, _)| rb == r)
                .filter(|&&(_, y)| y > 0.0)
                .map(|&(_, y)| (r, x / y))
        })
        .collect();
    out.sort_by_key(|&(r, _)| r);
    out
}

/// How a ratio compares with 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The whole interval is above 1.
    Ahead,
    /// The interval contains 1: no difference shown.
    Level,
    /// The whole interval is below 1.
    Behind,
}

impl Verdict {
    /// From a ratio's 95 % interval: `ahead`/`behind` only when it excludes 1.
    pub fn of(ci95: [f64; 2]) -> Verdict {
        if ci95[0] > 1.0 {
            Verdict::Ahead
        } else if ci95[1] < 1.0 {
            Verdict::Behind
        } else {
            Verdict::Level
        }
    }

    /// `ahead`, `level`, `behind`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ahead => "ahead",
            Verdict::Level => "level",
            Verdict::Behind => "behind",
        }
    }
}

/// The largest distance of a value from the median, as a share of the median (0 for fewer
/// than two values or a median of 0).
pub fn spread(v: &[f64]) -> f64 {
    let Some(m) = median(v) else { return 0.0 };
    if m <= 0.0 || v.len() < 2 {
        return 0.0;
    }
    v.iter().map(|x| (x - m).abs()).fold(0.0, f64::max) / m
}

/// Whether the values spread beyond ±[`NOISY_SPREAD`] of their median.
pub fn noisy(v: &[f64]) -> bool {
    spread(v) > NOISY_SPREAD
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_uniform_enough() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(42);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        // The published SplitMix64 sequence for seed 0 starts with this value.
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.below(6)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_fixed_seed_gives_a_fixed_order() {
        let order = |seed| {
            let mut v: Vec<usize> = (0..10).collect();
            Rng::new(seed).shuffle(&mut v);
            v
        };
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        let mut sorted = order(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>(), "a permutation");
        // Every position sees every element over many seeds (no fixed point left in place).
        let firsts: std::collections::HashSet<usize> = (0..200).map(|s| order(s)[0]).collect();
        assert_eq!(firsts.len(), 10);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn quantiles_interpolate() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 5.0);
        assert_eq!(quantile_sorted(&s, 0.5), 3.0);
        assert_eq!(quantile_sorted(&s, 0.125), 1.5);
    }

    #[test]
    fn median_ci_of_known_data() {
        assert_eq!(median_ci(&[], 1), None);
        assert_eq!(median_ci(&[2.0], 1), Some([2.0, 2.0]));
        // Five rounds: a resample's median is the smallest value with probability 5.8 %, the
        // largest likewise, so the 95 % interval runs from the smallest to the largest.
        let v = [1.0, 1.1, 1.2, 1.3, 1.4];
        assert_eq!(median_ci(&v, 3), Some([1.0, 1.4]));
        // Many tightly grouped values and one outlier: the interval stays near the middle.
        let mut w: Vec<f64> = (0..41).map(|i| 100.0 + f64::from(i)).collect();
        w.push(1000.0);
        let [lo, hi] = median_ci(&w, 3).unwrap();
        assert!(
            (110.0..120.5).contains(&lo) && hi > 120.5 && hi <= 131.0,
            "{lo} {hi}"
        );
    }

    #[test]
    fn the_bootstrap_is_seeded() {
        let w: Vec<f64> = (0..20).map(|i| f64::from(i * i % 17)).collect();
        assert_eq!(median_ci(&w, 9), median_ci(&w, 9));
        assert_eq!(change(&w, &w, 9), change(&w, &w, 9));
        assert_ne!(
            key_seed(1, "xdp one-core 64"),
            key_seed(1, "xdp one-core 100")
        );
        assert_ne!(key_seed(1, "xdp"), key_seed(2, "xdp"));
    }

    #[test]
    fn changes_between_runs() {
        let a = [1.0, 1.0, 1.0, 1.0, 1.0];
        let b = [1.18, 1.18, 1.18, 1.18, 1.18];
        let (c, ci) = change(&a, &b, 1).unwrap();
        assert!((c - 0.18).abs() < 1e-12);
        assert!((ci[0] - 0.18).abs() < 1e-12 && (ci[1] - 0.18).abs() < 1e-12);
        let (c, [lo, hi]) = change(&[1.0, 1.1, 0.9], &[1.2, 1.3, 1.1], 1).unwrap();
        assert!((c - 0.2).abs() < 1e-12);
        // Worst case 1.1 / 1.1 − 1 = 0, best 1.3 / 0.9 − 1 = 0.44.
        assert!(lo >= 0.0 && hi <= 0.45 && lo < c && c < hi, "{lo} {hi}");
        assert_eq!(change(&[], &b, 1), None);
        // Resamples of a with a zero median: the upper end is unbounded, not NaN.
        let (_, [_, hi]) = change(&[0.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 1).unwrap();
        assert_eq!(hi, f64::INFINITY);
        assert_eq!(change(&[0.0], &b, 1), None);
    }

    #[test]
    fn ratios_pair_by_round() {
        let a = [(1, 2.0), (2, 3.0), (3, 4.0), (5, 1.0)];
        let b = [(3, 2.0), (1, 1.0), (2, 0.0), (4, 9.0)];
        // Round 2: the peer delivered nothing; rounds 4 and 5: only one side ran.
        assert_eq!(paired_ratios(&a, &b), vec![(1, 2.0), (3, 2.0)]);
    }

    #[test]
    fn a_verdict_flips_only_when_the_interval_excludes_one() {
        assert_eq!(Verdict::of([1.01, 1.3]), Verdict::Ahead);
        assert_eq!(Verdict::of([1.0, 1.3]), Verdict::Level);
        assert_eq!(Verdict::of([0.7, 1.0]), Verdict::Level);
        assert_eq!(Verdict::of([0.99, 1.01]), Verdict::Level);
        assert_eq!(Verdict::of([0.7, 0.99]), Verdict::Behind);
        // A median far from 1 with a wide interval is still level.
        let per_round = [0.5, 0.6, 1.2, 0.55, 0.58];
        let ci = median_ci(&per_round, 1).unwrap();
        assert_eq!(
            (median(&per_round), Verdict::of(ci)),
            (Some(0.58), Verdict::Level)
        );
        let per_round = [0.5, 0.6, 0.9, 0.55, 0.58];
        assert_eq!(
            Verdict::of(median_ci(&per_round, 1).unwrap()),
            Verdict::Behind
        );
    }

    #[test]
    fn spread_and_noise() {
        assert_eq!(spread(&[]), 0.0);
        assert_eq!(spread(&[5.0]), 0.0);
        assert!((spread(&[1.0, 0.9, 1.1]) - 0.1).abs() < 1e-12);
        assert!(!noisy(&[1.0, 0.86, 1.14]));
        assert!(noisy(&[1.0, 0.8, 1.0]));
        assert!(noisy(&[1.83, 0.82, 1.8]), "issue 10's netring-xdp row");
    }
}
