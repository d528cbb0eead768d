//! `--load ndr`: the no-drop rate (RFC 2544 §26.1, as the DPDK and TRex reports use it) of one
//! row — the highest offered rate at which the receiver loses at most a given share — found by
//! a bounded search over full repetitions at paced rates.
//!
//! Loss is exact, from the repetition's [`Stages`](crate::stages::Stages): the generator's count
//! of frames sent against what the receiver read, after it drained (frames a filter rejects by
//! design are not losses). The search: one trial at the generator's maximum (its offered and
//! delivered rates bound the answer), then a geometric bisection between the best passing and
//! the lowest failing rate, starting at the rate delivered under overload, until the two are
//! within 2 % or [`MAX_TRIALS`] ran.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{LabConfig, Outcome};
use crate::gen::GenReport;
use crate::stages::{Ndr, Stages};

/// Trials per search, the first (unpaced) one included.
pub(super) const MAX_TRIALS: u32 = 8;
/// The search stops when the failing rate is within this factor of the passing one.
const RESOLUTION: f64 = 1.02;
/// Slowest rate tried, frames per second.
const FLOOR: f64 = 1000.0;

/// The share of the frames offered to the receiver that it did not read (`None` when nothing
/// was counted).
pub(super) fn loss(s: &Stages) -> Option<f64> {
    let offered = s.generated.checked_sub(s.filtered_out)?;
    (s.generated > 0 && offered > 0)
        .then(|| offered.saturating_sub(s.delivered) as f64 / offered as f64)
}

/// Where the search goes next: the rate to try, or `None` when done. `pass`: the best passing
/// rate so far (0: none), `fail`: the lowest failing rate.
fn next_rate(pass: f64, fail: f64, first_guess: f64) -> Option<f64> {
    if pass > 0.0 && fail / pass <= RESOLUTION {
        return None;
    }
    if fail <= FLOOR {
        return None;
    }
    let r = if pass == 0.0 {
        if first_guess > FLOOR && first_guess < fail / RESOLUTION {
            first_guess
        } else {
            fail / 4.0
        }
    } else {
        (pass * fail).sqrt()
    };
    Some(r.max(FLOOR))
}

/// Runs the search for one row: `trial(cfg)` is one repetition at `cfg.rate`. Returns the
/// repetition at the no-drop rate with [`Ndr`] filled in (its `pps` is what the receiver read
/// per second there), or the first trial's failure.
pub(super) fn search(
    cfg: &LabConfig,
    max_loss: f64,
    stop: &AtomicBool,
    mut trial: impl FnMut(&LabConfig) -> (Outcome, Option<GenReport>),
) -> (Outcome, Option<GenReport>) {
    let mut c = cfg.clone();
    c.rate = None;
    let (first, gr) = trial(&c);
    let Outcome::Done(max) = first else {
        return (first, gr);
    };
    let Some(l) = loss(&max.stages) else {
        return (
            Outcome::Failed("no packet counts: the no-drop rate cannot be searched".into()),
            gr,
        );
    };
    let mut trials = 1;
    let mut best = (*max, gr, l);
    let mut pass_rate = 0.0;
    let mut fail_rate = max.gen_pps;
    if l <= max_loss {
        // The generator's maximum passes: that is the answer (the receiver keeps up with it).
        pass_rate = max.gen_pps;
    } else {
        let mut have_pass = false;
        while trials < MAX_TRIALS && !stop.load(Ordering::Relaxed) {
            let Some(r) = next_rate(pass_rate, fail_rate, max.pps) else {
                break;
            };
            c.rate = Some(r as u64);
            trials += 1;
            let (o, g) = trial(&c);
            let Outcome::Done(rep) = o else {
                return (o, g);
            };
            match loss(&rep.stages) {
                Some(l) if l <= max_loss => {
                    pass_rate = rep.gen_pps.min(r);
                    best = (*rep, g, l);
                    have_pass = true;
                }
                _ => fail_rate = rep.gen_pps.min(r),
            }
        }
        if !have_pass {
            let mut rep = best.0;
            rep.pps = 0.0;
            rep.ndr = Some(Ndr {
                offered_pps: 0.0,
                loss: best.2,
                failed_pps: fail_rate,
                trials,
            });
            return (Outcome::Done(Box::new(rep)), best.1);
        }
    }
    let (mut rep, g, l) = best;
    rep.ndr = Some(Ndr {
        offered_pps: pass_rate,
        loss: l,
        failed_pps: fail_rate,
        trials,
    });
    (Outcome::Done(Box::new(rep)), g)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn loss_ignores_filtered_frames() {
        let s = Stages {
            generated: 1000,
            filtered_out: 900,
            delivered: 99,
            ..Stages::default()
        };
        assert!((loss(&s).unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(loss(&Stages::default()), None);
    }

    #[test]
    fn bisection_narrows_to_the_resolution() {
        // A receiver that keeps up to exactly 1.234 Mpps.
        let ndr = 1.234e6;
        let (mut pass, mut fail) = (0.0, 8e6);
        let mut n = 1;
        while let Some(r) = next_rate(pass, fail, 1.1e6) {
            n += 1;
            if r <= ndr {
                pass = r;
            } else {
                fail = r;
            }
            assert!(n < 20, "the search ends");
        }
        assert!(
            pass <= ndr && fail > ndr && fail / pass <= RESOLUTION,
            "{pass} {fail}"
        );
        // The first guess (the rate delivered under overload) is tried first.
        assert_eq!(next_rate(0.0, 8e6, 1.1e6), Some(1.1e6));
        // A guess above the failing rate is ignored.
        assert_eq!(next_rate(0.0, 1e6, 2e6), Some(0.25e6));
    }
}
