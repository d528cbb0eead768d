//! `BPF_PROG_TEST_RUN` of XDP programs: on a synthetic frame ([`test_run`]), and with live
//! frames that are really transmitted or redirected ([`test_run_live`], the lab's traffic
//! generator).
//!
//! # References
//! - <https://docs.kernel.org/bpf/bpf_prog_run.html> (live frame mode)

use std::os::fd::AsFd;

use super::{XdpAction, XdpProgram};
use crate::sys::bpf::{self as sys, TestRunArgs, XdpMd};
use crate::{Error, Result};

/// `TEST_XDP_MAX_BATCH` in `net/bpf/test_run.c`: the largest live-frames batch.
pub const TEST_XDP_MAX_BATCH: u32 = 256;

/// `ETH_HLEN`: `BPF_PROG_TEST_RUN` refuses shorter frames.
const ETH_HLEN: usize = 14;

/// What [`test_run`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value of the last run (an [`XdpAction`] for sane programs).
    pub retval: u32,
    /// The frame after the last run (programs may rewrite, grow or shrink it).
    pub data_out: Vec<u8>,
    /// Mean time per run in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
}

impl TestRunResult {
    /// [`TestRunResult::retval`] as an action.
    pub fn action(&self) -> Option<XdpAction> {
        XdpAction::from_raw(self.retval)
    }
}

/// What [`test_run_live`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRunResult {
    /// Frames the program ran on (the `repeat` asked for; at least 1).
    pub frames: u32,
    /// Mean time per frame in nanoseconds, including the transmit work, as the kernel measured
    /// it.
    pub duration_ns: u32,
}

fn check_frame(data: &[u8]) -> Result<()> {
    if data.len() < ETH_HLEN {
        return Err(Error::InvalidConfig {
            field: "frame",
            why: format!(
                "{} bytes; BPF_PROG_TEST_RUN needs at least an Ethernet header (14 bytes)",
                data.len()
            ),
        });
    }
    Ok(())
}

/// `bpf(BPF_PROG_TEST_RUN)`—Runs `prog` `repeat` times (0 counts as 1) on a copy of `data`, in
/// the calling thread's network namespace, with the loopback device's queue 0 as the RX queue.
/// Nothing is sent or redirected.
///
/// # Errors
/// [`Error::InvalidConfig`] if `data` is shorter than an Ethernet header; [`Error::Syscall`]
/// (`EINTR` if a signal cut a long run short).
pub fn test_run(prog: &XdpProgram, data: &[u8], repeat: u32) -> Result<TestRunResult> {
    check_frame(data)?;
    // Room for programs that grow the frame (bpf_xdp_adjust_head/tail stay within one page).
    let mut out = vec![0u8; data.len() + 4096];
    let r = sys::prog_test_run(
        prog.as_fd(),
        TestRunArgs {
            data_in: data,
            data_out: &mut out,
            ctx_in: None,
            repeat,
            flags: 0,
            batch_size: 0,
        },
    )?;
    out.truncate(r.data_size_out as usize);
    Ok(TestRunResult {
        retval: r.retval,
        data_out: out,
        duration_ns: r.duration,
    })
}

/// `bpf(BPF_PROG_TEST_RUN, BPF_F_TEST_XDP_LIVE_FRAMES)`—Runs `prog` on `repeat` copies of
/// `frame` as if they had arrived on queue `rx_queue` of interface `ifindex` (in the calling
/// thread's namespace), and carries out the verdicts for real.
///
/// Semantics (`bpf_test_run_xdp_live` in `net/bpf/test_run.c`): the kernel builds `batch_size`
/// frames in a page pool (0 means 64, at most [`TEST_XDP_MAX_BATCH`]), runs the program on each,
/// then `XDP_TX` becomes a redirect out of `ifindex` itself, `XDP_REDIRECT` is performed,
/// `XDP_PASS` frames are turned into skbs and given to the stack as received on `ifindex`, and
/// everything else is dropped; redirects are flushed after each batch. So a program returning
/// `XDP_TX` transmits `repeat` frames out of `ifindex`. For a veth the peer must have an XDP
/// program attached in *native* mode (veth's `ndo_xdp_xmit` needs the peer's NAPI); otherwise,
/// and also with a generic-mode program on the peer, the frames vanish without an error or any
/// counter moving (observed on 6.18). Each call has a fixed cost of tens of milliseconds
/// (page-pool setup): use millions of frames per call for rate.
///
/// # Errors
/// [`Error::InvalidConfig`] for a frame shorter than 14 bytes or `batch_size` above
/// [`TEST_XDP_MAX_BATCH`]; [`Error::Syscall`]: `ENODEV` for an unknown `ifindex`, `EINVAL` for
/// an `rx_queue` the device does not have or a frame larger than a page minus headroom, `EINTR`
/// when a signal stopped the run (frames already sent stay sent).
pub fn test_run_live(
    prog: &XdpProgram,
    frame: &[u8],
    ifindex: u32,
    rx_queue: u32,
    repeat: u32,
    batch_size: u32,
) -> Result<LiveRunResult> {
    check_frame(frame)?;
    if batch_size > TEST_XDP_MAX_BATCH {
        return Err(Error::InvalidConfig {
            field: "batch_size",
            why: format!("{batch_size}; the kernel accepts at most {TEST_XDP_MAX_BATCH}"),
        });
    }
    let ctx = XdpMd {
        data: 0,
        // check_frame bounds the length from below only; the kernel rejects large frames.
        data_end: u32::try_from(frame.len()).unwrap_or(u32::MAX),
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: rx_queue,
        egress_ifindex: 0,
    };
    let r = sys::prog_test_run(
        prog.as_fd(),
        TestRunArgs {
            data_in: frame,
            data_out: &mut [],
            ctx_in: Some(&ctx),
            repeat,
            flags: sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size,
        },
    )?;
    Ok(LiveRunResult {
        frames: repeat.max(1),
        duration_ns: r.duration,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn short_frames_are_refused_before_the_syscall() {
        assert!(matches!(
            check_frame(&[0; 13]),
            Err(Error::InvalidConfig { field: "frame", .. })
        ));
        assert!(check_frame(&[0; 14]).is_ok());
    }
}
