//! When the RX ring runs empty under load, nap instead of sleeping on the socket.
//!
//! Sleeping in `poll()` makes every NAPI flush (at most 64 frames) wake the receiver: on one
//! core that is a context switch away from the NAPI kthread and one back, per ≤ 64 frames. A
//! receiver that was busy — it drained a run of at least [`LOADED`] frames since the ring was
//! last empty — instead sleeps a short, timed nap (it is on no wait queue, so the kernel's
//! flushes wake nobody), then drains everything that arrived meanwhile. The nap adapts to the
//! rate of the last run: long enough to find a useful backlog, never longer than the time to
//! fill [`HALF`] of the RX ring at that rate, and never over [`MAX_NAP`]. A receiver that finds
//! the ring empty again after a nap, or that drained only a few frames, waits in `poll()` as
//! before, so a lone packet still wakes it at once. Sans-IO: the caller sleeps.

use std::time::{Duration, Instant};

/// Frames drained since the ring was last empty that count as "under load".
pub(super) const LOADED: u32 = 128;
/// The longest nap.
pub(super) const MAX_NAP: Duration = Duration::from_micros(250);
/// The shortest nap worth a timer.
const MIN_NAP: Duration = Duration::from_micros(20);
/// The share of the RX ring a nap may let fill.
pub(super) const HALF: u32 = 2;

/// The receive loop's recent history.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Coalesce {
    /// Frames drained since the ring was last found empty.
    run: u32,
    /// When the current run started.
    since: Option<Instant>,
}

impl Coalesce {
    /// `n` frames were just taken off the ring.
    #[inline]
    pub(super) fn took(&mut self, n: u32, now: impl FnOnce() -> Instant) {
        if n > 0 {
            if self.since.is_none() {
                self.since = Some(now());
            }
            self.run = self.run.saturating_add(n);
        }
    }

    /// The ring is empty at `now`: how long to nap before looking again (`None`: wait in
    /// `poll()`). `rx_size`: RX ring entries.
    pub(super) fn empty(&mut self, now: Instant, rx_size: u32) -> Option<Duration> {
        let run = std::mem::take(&mut self.run);
        let since = self.since.take();
        if run < LOADED {
            // Idle, or a trickle: poll. (After a nap that found nothing, `run` is 0 too.)
            return None;
        }
        let elapsed = since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        // Frames per second over the run; a run that took no measurable time is "very fast".
        let nap = if elapsed.is_zero() {
            MAX_NAP
        } else {
            let rate = f64::from(run) / elapsed.as_secs_f64();
            let fill = Duration::from_secs_f64(f64::from(rx_size / HALF) / rate);
            fill.min(MAX_NAP)
        };
        if nap < MIN_NAP {
            return None;
        }
        Some(nap)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_trickle_polls() {
        let mut c = Coalesce::default();
        let t = Instant::now();
        c.took(1, || t);
        assert_eq!(c.empty(t + Duration::from_millis(1), 4096), None);
        assert_eq!(c.empty(t + Duration::from_millis(2), 4096), None);
    }

    #[test]
    fn load_naps_at_most_the_half_ring_time_and_the_cap() {
        let t = Instant::now();
        // 1 Mpps: half of a 4096 ring fills in 2 ms, so the cap holds.
        let mut c = Coalesce::default();
        c.took(64, || t);
        c.took(936, || unreachable!("the run started already"));
        assert_eq!(c.empty(t + Duration::from_millis(1), 4096), Some(MAX_NAP));
        // The nap found nothing: the next empty ring polls.
        assert_eq!(c.empty(t + Duration::from_millis(2), 4096), None);
        // 20 Mpps on a 2048 ring: 1024 frames take 51 µs.
        let mut c = Coalesce::default();
        c.took(2000, || t);
        let nap = c.empty(t + Duration::from_micros(100), 2048).unwrap();
        assert!(
            nap > Duration::from_micros(50) && nap < Duration::from_micros(52),
            "{nap:?}"
        );
        // So fast that half the ring fills in under 20 µs: not worth a timer.
        let mut c = Coalesce::default();
        c.took(10_000, || t);
        assert_eq!(c.empty(t + Duration::from_micros(100), 256), None);
    }
}
