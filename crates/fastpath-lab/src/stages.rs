//! Where the packets of one repetition went, and how noisy the machine was meanwhile. Sans-IO:
//! the run code fills these from counters; the report sums, prints and saves them.
//!
//! The stages follow a frame from the generator to the receiving program:
//!
//! ```text
//! generated ─► generator veth ─► receiving veth's XDP ─► socket / ring ─► delivered
//!                  │ ring full         │ XDP_DROP,            │ socket or
//!                  ▼                   ▼ redirect failed      ▼ ring drops
//!             gen_veth_dropped     xdp_dropped            socket_dropped
//! ```
//! `filtered_out` counts frames a filter rejected by design (filtered rows); `unaccounted` is
//! what no counter explains: `generated − delivered − filtered_out − the losses`.

use serde::Serialize;

/// Packet counts at each stage the testbed can see (one repetition, or summed over a row's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    /// Frames the generator transmitted.
    pub generated: u64,
    /// Lost between the generator and the receiving veth: the peer ring was full
    /// (`tx_queue_0_xdp_xmit_errors`; AF_PACKET generator: `tx_dropped`).
    pub gen_veth_dropped: u64,
    /// Frames the receiving veth's XDP program ran on (`rx_queue_0_xdp_packets`).
    pub rx_veth_xdp: u64,
    /// Lost at the receiving veth: XDP_DROP verdicts (`rx_queue_0_xdp_drops`) and failed
    /// redirects or skb allocations (`rx_queue_0_drops`). For the XDP_DROP ceiling row the
    /// verdicts are its deliveries and only the failures count here.
    pub xdp_dropped: u64,
    /// Frames redirected to an AF_XDP socket (`rx_queue_0_xdp_redirect`).
    pub xdp_redirected: u64,
    /// Rejected by the row's filter by design (filtered rows).
    pub filtered_out: u64,
    /// Dropped by the socket or its ring (AF_PACKET `tp_drops`; AF_XDP `rx_dropped`,
    /// `rx_ring_full`, fill ring empty). On the xdp rung these are also in `xdp_dropped`.
    pub socket_dropped: u64,
    /// Read by the user-space program.
    pub delivered: u64,
    /// `generated` minus everything the counters explain (negative: counted twice or stray
    /// frames).
    pub unaccounted: i64,
}

impl Stages {
    /// The smallest share of the generated frames [`Self::lost_at`] names a stage for: 1 in
    /// 10,000 (a tenth of the NDR search's default loss budget).
    pub const NAMED_LOSS: f64 = 1e-4;

    /// Adds `o` to `self`, field by field.
    pub fn add(&mut self, o: &Stages) {
        self.generated += o.generated;
        self.gen_veth_dropped += o.gen_veth_dropped;
        self.rx_veth_xdp += o.rx_veth_xdp;
        self.xdp_dropped += o.xdp_dropped;
        self.xdp_redirected += o.xdp_redirected;
        self.filtered_out += o.filtered_out;
        self.socket_dropped += o.socket_dropped;
        self.delivered += o.delivered;
        self.unaccounted += o.unaccounted;
    }

    /// The stage that lost the most (`None` when no stage lost at least [`Self::NAMED_LOSS`] of
    /// the generated frames), by name: `veth ring`, `xdp`, `socket`, `unaccounted`. Below that
    /// share a "loss" is the handful of frames still in flight when the counters were read, and
    /// naming a stage for it would send a reader looking for a problem that is not there.
    pub fn lost_at(&self) -> Option<&'static str> {
        let floor = (self.generated as f64 * Self::NAMED_LOSS).ceil().max(1.0) as u64;
        [
            ("veth ring", self.gen_veth_dropped),
            ("xdp", self.xdp_dropped),
            ("socket", self.socket_dropped),
            ("unaccounted", self.unaccounted.max(0) as u64),
        ]
        .into_iter()
        .filter(|&(_, n)| n >= floor)
        .max_by_key(|&(_, n)| n)
        .map(|(s, _)| s)
    }

    /// `|unaccounted| / generated` (0 when nothing was generated).
    pub fn unaccounted_share(&self) -> f64 {
        if self.generated == 0 {
            0.0
        } else {
            self.unaccounted.unsigned_abs() as f64 / self.generated as f64
        }
    }
}

/// What else happened on the machine during one repetition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Noise {
    /// CPU time the hypervisor stole from the generator's CPU, share of the window (0..1).
    pub gen_cpu_steal: f64,
    /// The same for the receiver's CPU.
    pub rx_cpu_steal: f64,
    /// The generator's real rate over the repetition, frames per second.
    pub offered_pps: f64,
    /// The CPU the receiving veth's NAPI kthread last ran on (`None`: no kthread, e.g. split).
    pub kthread_cpu: Option<usize>,
    /// Share of the window the NAPI kthread was on a CPU (0..1).
    pub kthread_busy: f64,
}

/// How a row's no-drop rate was found (`--load ndr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ndr {
    /// The highest offered rate that passed, frames per second (0: none passed).
    pub offered_pps: f64,
    /// Its loss, as a fraction.
    pub loss: f64,
    /// The lowest offered rate that failed (the search's upper bound; the generator's maximum
    /// when none failed).
    pub failed_pps: f64,
    /// Trials run (each one full repetition at one rate).
    pub trials: u32,
}

#[cfg(test)]
mod tests {
    use super::Stages;

    #[test]
    fn lost_at_names_the_biggest_loss_but_not_frames_in_flight() {
        let mut s = Stages {
            generated: 1_000_000,
            delivered: 999_950,
            unaccounted: 50,
            ..Stages::default()
        };
        // 50 of a million (0.005%) is below the floor: nothing is named.
        assert_eq!(s.lost_at(), None);
        s.socket_dropped = 300;
        s.gen_veth_dropped = 100;
        s.delivered -= 400;
        assert_eq!(s.lost_at(), Some("socket"));
        // Nothing generated: nothing to name, and no division by zero.
        assert_eq!(Stages::default().lost_at(), None);
    }
}
