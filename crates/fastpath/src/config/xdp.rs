//! AF_XDP options for the `xdp` rung: UMEM and ring geometry, wake-up and busy-poll policy,
//! zero-copy policy, and how the XDP program is attached.

use super::XdpMode;
use crate::{Error, Result};

/// Whether to use the driver's zero-copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ZeroCopy {
    /// Zero-copy if the driver has it, copy mode otherwise (the default).
    #[default]
    Auto,
    /// Zero-copy or fail with [`Error::Unsupported`].
    Require,
    /// Copy mode even where zero-copy would work.
    Never,
}

/// AF_XDP geometry and options for [`Backend::Xdp`](crate::Backend::Xdp).
///
/// Every XDP setting lives here; [`Config::xdp_attach`](crate::Config::xdp_attach) and
/// [`Config::xdp_replace`](crate::Config::xdp_replace) are shorthands that write
/// [`mode`](Self::mode) and [`replace`](Self::replace). The snapshot length and batch size are
/// shared by every rung and live in [`Config`](crate::Config).
///
/// The defaults: RX and fill rings of 4096 entries over a UMEM of 8192 2-KiB frames (16 MiB,
/// pinned: it needs `CAP_IPC_LOCK` or a generous `RLIMIT_MEMLOCK`), no TX ring, `poll()` when the
/// ring is empty. What each knob was measured to do on the lab's veth testbed (one-core unless a
/// row says split; 64 B, lab v2, paired against netring-xdp in the same runs; `docs/lab-notes.md`
/// has the commands):
///
/// | knob | throughput | receiver CPU | latency |
/// |---|---|---|---|
/// | `tx_size` 0 (default) vs 2048 | xdp/netring-xdp 0.85 → 0.91 at full load, 0.90 → 1.00 at 3 Mpps paced (5 rounds each; CIs overlap) | — | — |
/// | `coalesce` on vs off (default) | 0.91 → 1.00 at full load, 0.94 → 0.97 at 3 Mpps (8 rounds; CIs overlap: no difference beyond noise) | 57–63 → 98–109 ns/pkt when the machine is slow (more, smaller naps) | lone packet after a burst: 11 µs median (nap ends in ≤ 250 µs, then `poll()`) |
/// | `busy_poll` | cannot engage in copy mode (no NAPI id): refused | — | — |
/// | `rx_size`/`fill_size`/`frame_count` 4096/4096/8192 (default) vs 8192/8192/16384 vs 16384/16384/32768 vs 2048/2048/4096 | split layout (the kernel's copy on the generator's CPU): xdp/netring-xdp 1.14–1.18 vs 0.95–1.00 vs 0.74–0.78 vs 1.28–1.29: fewer frames in circulation make the kernel's copy into the UMEM cheaper; one-core: 1.00–1.04 vs 0.98–1.03 vs 0.84–0.88 vs 0.99–1.01 at full load, all 1.01–1.02 at 3 Mpps paced (2–3 runs × 5 rounds each) | — | — |
/// | (same, drops) | the socket's share of the frames at 3 Mpps paced one-core: 0.4–0.5 % vs 0 vs — vs 4–4.5 %, with the same frames delivered (what the socket does not drop, the veth ring does); raise all three for bursts | — | — |
// Implementation: backend/xdp/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct XdpConfig {
    /// Bytes per UMEM frame: 2048 or 4096. One frame holds one packet (plus 256 bytes of
    /// `XDP_PACKET_HEADROOM` the kernel keeps in front of received data).
    pub frame_size: u32,
    /// UMEM frames in all (shared by every queue of a port); a power of two.
    pub frame_count: u32,
    /// RX ring entries per socket; a power of two.
    pub rx_size: u32,
    /// TX ring entries per socket: 0 (the default: receive only) or a power of two. Also the
    /// number of TX frames (at most half a socket's share of the UMEM). Only a socket with a
    /// TX ring can [`send`](crate::Receiver::send); without one, the kernel has nothing to do
    /// for TX when the receiver waits (in copy mode, `poll()` on a socket with a TX ring runs
    /// the TX path each time).
    pub tx_size: u32,
    /// Fill ring entries per socket; a power of two.
    pub fill_size: u32,
    /// Completion ring entries per socket; a power of two.
    pub comp_size: u32,
    /// Ask for `XDP_USE_NEED_WAKEUP`: the kernel says when it needs a syscall, so a busy
    /// receiver makes none.
    pub need_wakeup: bool,
    /// `Some((µs, budget))`: `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL = µs`,
    /// `SO_BUSY_POLL_BUDGET = budget`.
    pub busy_poll: Option<(u32, u32)>,
    /// When the RX ring runs empty after a busy run, nap (≤ 250 µs, ≤ the time to fill half
    /// the ring at the last rate) instead of sleeping in `poll()`, so the kernel's flushes wake
    /// nobody; a trickle still waits in `poll()` (a lone packet arrives at once). See
    /// `backend/xdp/coalesce.rs`.
    pub coalesce: bool,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// How the XDP program is attached: [`XdpMode::Native`] (default; driver support needed) or
    /// [`XdpMode::Generic`] (any interface, slower). Never falls back by itself.
    pub mode: XdpMode,
    /// Replace an XDP program another tool attached to the interface instead of failing
    /// (default false).
    pub replace: bool,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            frame_size: 2048,
            frame_count: 8192,
            rx_size: 4096,
            tx_size: 0,
            fill_size: 4096,
            comp_size: 2048,
            need_wakeup: true,
            busy_poll: None,
            coalesce: false,
            zero_copy: ZeroCopy::Auto,
            mode: XdpMode::Native,
            replace: false,
        }
    }
}

impl XdpConfig {
    /// Checks what needs no kernel, for a port of `queues` sockets that lend at most
    /// `batch_size` ([`Config::batch_size`](crate::Config::batch_size)) packets per batch.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and, for sizes, the next power of two.
    pub(crate) fn validate(&self, queues: usize, batch_size: u32) -> Result<()> {
        let pow2 = |field: &'static str, v: u32| -> Result<()> {
            if v == 0 || !v.is_power_of_two() {
                return Err(Error::InvalidConfig {
                    field,
                    why: format!(
                        "{v} is not a power of two; try {}",
                        super::mmap::pow2_hint(v)
                    ),
                });
            }
            Ok(())
        };
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return Err(Error::InvalidConfig {
                field: "frame_size",
                why: format!("{} is not supported (choose 2048 or 4096)", self.frame_size),
            });
        }
        pow2("frame_count", self.frame_count)?;
        pow2("rx_size", self.rx_size)?;
        if self.tx_size != 0 {
            pow2("tx_size", self.tx_size)?;
        }
        pow2("fill_size", self.fill_size)?;
        pow2("comp_size", self.comp_size)?;
        if batch_size == 0 || batch_size > self.rx_size {
            return Err(Error::InvalidConfig {
                field: "batch_size",
                why: format!(
                    "{} is out of range (1 to rx_size, {})",
                    batch_size, self.rx_size
                ),
            });
        }
        if let Some((_, budget)) = self.busy_poll {
            if budget == 0 || budget > i32::MAX as u32 {
                return Err(Error::InvalidConfig {
                    field: "busy_poll budget",
                    why: format!("{budget} is out of range (1 to 2^31-1; 64 is typical)"),
                });
            }
        }
        let q = u32::try_from(queues.max(1)).unwrap_or(u32::MAX);
        let share = self.frame_count / q;
        if share < 2 {
            return Err(Error::InvalidConfig {
                field: "frame_count",
                why: format!(
                    "{} frames cannot be shared by {queues} sockets (each needs at least 2); try {}",
                    self.frame_count,
                    super::mmap::pow2_hint(q.saturating_mul(2))
                ),
            });
        }
        let bytes = u64::from(self.frame_count) * u64::from(self.frame_size);
        if bytes > 1 << 32 {
            return Err(Error::InvalidConfig {
                field: "frame_count",
                why: format!("a UMEM of {bytes} bytes is more than the 4 GiB fastpath allows"),
            });
        }
        Ok(())
    }

    /// How a socket's share of `share` frames splits: (RX frames, TX frames).
    pub(crate) fn split(&self, share: u32) -> (u32, u32) {
        let tx = self.tx_size.min(share / 2);
        let rx = (share - tx).min(self.fill_size);
        (rx, tx)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let d = XdpConfig::default();
        d.validate(1, 64).unwrap();
        d.validate(4, 64).unwrap();
        // (change to the defaults, sockets, test of the message)
        type Case = (fn(&mut XdpConfig), usize, fn(&str) -> bool);
        let cases: [Case; 4] = [
            (
                |c| c.fill_size = 3000,
                1,
                |m| m == "invalid fill_size: 3000 is not a power of two; try 4096",
            ),
            (|c| c.rx_size = 0, 1, |m| m.starts_with("invalid rx_size")),
            (|c| c.frame_size = 1000, 1, |m| m.contains("2048 or 4096")),
            (
                |c| c.frame_count = 4,
                4,
                |m| m.starts_with("invalid frame_count"),
            ),
        ];
        for (change, queues, check) in cases {
            let mut cfg = d;
            change(&mut cfg);
            let e = cfg.validate(queues, 64).unwrap_err();
            assert!(check(&e.to_string()), "{e}");
        }
        // The batch size lives in Config; the xdp rung bounds it by its RX ring.
        let e = d.validate(1, d.rx_size * 2).unwrap_err();
        assert!(e.to_string().starts_with("invalid batch_size"), "{e}");
    }

    #[test]
    fn defaults_follow_lab_notes() {
        let d = XdpConfig::default();
        assert!(d.rx_size >= 4096);
        // Every RX slot can be backed by a frame from the fill ring.
        assert!(d.fill_size >= d.rx_size);
        assert!(d.need_wakeup);
    }

    #[test]
    fn split_conserves_frames() {
        // Receive only (the default): the share goes to RX, up to the fill ring's size.
        assert_eq!(XdpConfig::default().split(4096), (4096, 0));
        assert_eq!(XdpConfig::default().split(8192), (4096, 0));
        let d = XdpConfig {
            tx_size: 2048,
            ..XdpConfig::default()
        };
        let (rx, tx) = d.split(4096);
        assert_eq!((rx, tx), (2048, 2048));
        let (rx, tx) = d.split(65536);
        assert_eq!((rx, tx), (4096, 2048), "rx capped at the fill ring size");
        let (rx, tx) = d.split(2);
        assert_eq!((rx, tx), (1, 1));
    }
}
