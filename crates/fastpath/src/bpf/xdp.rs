//! The XDP programs fastpath needs, emitted from Rust; the XSKMAP; attaching to an interface
//! through a `bpf_link`; and `BPF_PROG_TEST_RUN` (including live frames, the traffic generator).
//!
//! Guarantees:
//! - [`XdpAttachment::attach`] never silently replaces a program someone else attached: unless
//!   `replace` is set it fails with [`Error::XdpAlreadyAttached`], naming the program.
//! - Native mode never falls back to generic mode by itself: a driver without native XDP gives
//!   [`Error::Unsupported`], whose text says that generic mode must be asked for.
//! - An attachment made through a `bpf_link` (every kernel since 5.9) disappears with the
//!   process, even on `kill -9`: the kernel detaches when the last link fd is closed.
//!
//! # References
//! - <https://docs.kernel.org/bpf/redirect.html>
//! - <https://docs.kernel.org/bpf/bpf_prog_run.html> (live frame mode)
//! - <https://docs.kernel.org/networking/af_xdp.html>

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::insn::{AluOp, Insn, JmpOp, Program, Reg, Size, Src};
use super::rtnl::{
    self, LinkXdp, XDP_ATTACHED_MULTI, XDP_ATTACHED_NONE, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE,
    XDP_FLAGS_SKB_MODE,
};
use super::sys::{self, Map, MapType, TestRunArgs, XdpMd};
use crate::{Error, Result};

/// `BPF_FUNC_redirect_map` (`enum bpf_func_id`).
pub const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// `TEST_XDP_MAX_BATCH` in `net/bpf/test_run.c`: the largest live-frames batch.
pub const TEST_XDP_MAX_BATCH: u32 = 256;

/// `ETH_HLEN`: `BPF_PROG_TEST_RUN` refuses shorter frames.
const ETH_HLEN: usize = 14;

/// An XDP program's verdict (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0): drop and fire the `xdp_exception` tracepoint.
    Aborted = 0,
    /// `XDP_DROP` (1).
    Drop = 1,
    /// `XDP_PASS` (2): on to the kernel stack.
    Pass = 2,
    /// `XDP_TX` (3): back out of the interface it came in on.
    Tx = 3,
    /// `XDP_REDIRECT` (4): to another interface, CPU or AF_XDP socket.
    Redirect = 4,
}

impl XdpAction {
    /// The action for a raw return value, `None` for values the kernel treats as invalid.
    pub fn from_raw(v: u32) -> Option<XdpAction> {
        Some(match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            _ => return None,
        })
    }
}

/// Instructions of a program that returns `action` for every frame: `r0 = action; exit`.
pub fn action_insns(action: XdpAction) -> Vec<Insn> {
    vec![Insn::mov64_imm(Reg::R0, action as i32), Insn::exit()]
}

/// Instructions of the generator's multi-flow program: for an Ethernet / IPv4 (no options) /
/// UDP frame, rewrite the UDP source port to `base + bpf_get_prandom_u32() % flows`, then
/// `XDP_TX`. Run with live frames it spreads one template over `flows` flows packet by packet
/// (the UDP checksum is not updated: the lab's frames are discarded after the capture taps).
///
/// ```text
/// r6 = *(u32 *)(r1 + 0)      // ctx->data
/// r7 = *(u32 *)(r1 + 4)      // ctx->data_end
/// r2 = r6; r2 += 36
/// if r2 > r7 goto tx         // the verifier's bounds check for bytes 34..36
/// call bpf_get_prandom_u32   // r0
/// w0 %= flows; r0 += base
/// r1 = r0; r1 >>= 8
/// *(u8 *)(r6 + 34) = r1; *(u8 *)(r6 + 35) = r0   // big-endian port
/// tx: r0 = XDP_TX; exit
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] if `flows` is 0.
pub fn tx_flows_insns(base: u16, flows: u16) -> Result<Vec<Insn>> {
    if flows == 0 {
        return Err(Error::InvalidConfig {
            field: "flows",
            why: "0 flows: give at least 1".into(),
        });
    }
    const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
    let mut p = Program::new();
    let tx = p.label();
    p.push(Insn::ldx_mem(Size::W, Reg::R6, Reg::R1, 0))
        .push(Insn::ldx_mem(Size::W, Reg::R7, Reg::R1, 4))
        .push(Insn::mov64_reg(Reg::R2, Reg::R6))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R2, 36))
        .jump_if(JmpOp::Gt, Reg::R2, Src::Reg(Reg::R7), tx)
        .push(Insn::call(BPF_FUNC_GET_PRANDOM_U32))
        .push(Insn::alu32_imm(AluOp::Mod, Reg::R0, i32::from(flows)))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R0, i32::from(base)))
        .push(Insn::mov64_reg(Reg::R1, Reg::R0))
        .push(Insn::alu64_imm(AluOp::Rsh, Reg::R1, 8))
        .push(Insn::stx_mem(Size::B, Reg::R6, Reg::R1, 34))
        .push(Insn::stx_mem(Size::B, Reg::R6, Reg::R0, 35))
        .bind(tx)
        .extend(action_insns(XdpAction::Tx));
    Ok(p.finish()?)
}

/// Instructions of the AF_XDP redirect program for the XSKMAP behind fd `xsks`:
///
/// ```text
/// r2 = *(u32 *)(r1 + 16)             // ctx->rx_queue_index
/// r1 = map[xsks] ll
/// r3 = 2                             // XDP_PASS when the queue has no socket
/// call bpf_redirect_map
/// exit
/// ```
///
/// `bpf_redirect_map` returns `XDP_REDIRECT` if slot `rx_queue_index` holds a socket, otherwise
/// the low bits of its flags argument, here `XDP_PASS`: frames of queues without a socket go to
/// the kernel stack as if no program were attached.
pub fn redirect_insns(xsks: i32) -> Vec<Insn> {
    let [map_lo, map_hi] = Insn::ld_map_fd(Reg::R1, xsks);
    vec![
        Insn::ldx_mem(Size::W, Reg::R2, Reg::R1, XDP_MD_RX_QUEUE_INDEX),
        map_lo,
        map_hi,
        Insn::mov64_imm(Reg::R3, XdpAction::Pass as i32),
        Insn::call(BPF_FUNC_REDIRECT_MAP),
        Insn::exit(),
    ]
}

/// Instructions of the AF_XDP redirect program behind a packet filter: `filter` (classic BPF,
/// translated to eBPF) runs first; matching frames go to [`redirect_insns`]'s redirect,
/// the others to the kernel stack (`XDP_PASS`).
///
/// # Errors
/// [`AsmError`](super::insn::AsmError) if the translated program cannot be assembled (jumps
/// beyond the 16-bit range: a filter of many thousand instructions).
pub fn filtered_redirect_insns(
    xsks: i32,
    filter: &crate::filter::Filter,
) -> std::result::Result<Vec<Insn>, super::insn::AsmError> {
    // r6 holds the context (see filter::ebpf); the redirect expects it in r1.
    let mut on_accept = vec![Insn::mov64_reg(Reg::R1, Reg::R6)];
    on_accept.extend(redirect_insns(xsks));
    behind_filter(filter, on_accept, returning(XdpAction::Pass))
}

/// `filter` translated to eBPF, then `on_accept` where it accepts and `on_reject` where it
/// rejects (each only if some path gets there: the verifier refuses unreachable code).
fn behind_filter(
    filter: &crate::filter::Filter,
    on_accept: Vec<Insn>,
    on_reject: Vec<Insn>,
) -> std::result::Result<Vec<Insn>, super::insn::AsmError> {
    let mut p = Program::new();
    let (accept, reject) = (p.label(), p.label());
    let exits = crate::filter::ebpf::translate(filter.insns(), &mut p, accept, reject);
    if exits.accept {
        p.bind(accept);
        p.extend(on_accept);
    }
    if exits.reject {
        p.bind(reject);
        p.extend(on_reject);
    }
    p.finish()
}

/// `return action`.
fn returning(action: XdpAction) -> Vec<Insn> {
    vec![Insn::mov64_imm(Reg::R0, action as i32), Insn::exit()]
}

/// `bpf_xdp_adjust_head`.
const BPF_FUNC_XDP_ADJUST_HEAD: i32 = 44;

/// Appends code that puts back into the frame an outer VLAN tag the device moved into
/// metadata (hardware VLAN stripping; on veth, a tag that came with the skb, e.g. from a VLAN
/// device on the peer): AF_XDP hands out the frame as it was on the wire, like the AF_PACKET
/// rungs, and a filter sees the tag. `kfunc` is the BTF id of `bpf_xdp_metadata_rx_vlan_tag`
/// (Linux 6.8+); the program must be device-bound. Frames without such a tag, shorter than
/// 12 bytes, or without 4 bytes of headroom go on unchanged.
///
/// Entered and left with the context in `r1`; clobbers `r0`–`r6` and 8 bytes of stack at
/// `r10 - 8`.
fn restore_vlan(p: &mut Program, kfunc: u32) {
    let done = p.label();
    p.push(Insn::mov64_reg(Reg::R6, Reg::R1));
    // __be16 proto at r10-8, u16 tci at r10-6 (zeroed: the kfunc may only write them).
    p.push(Insn::st_mem(Size::DW, Reg::R10, -8, 0));
    p.push(Insn::mov64_reg(Reg::R2, Reg::R10));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R2, -8));
    p.push(Insn::mov64_reg(Reg::R3, Reg::R10));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R3, -6));
    p.push(Insn::call_kfunc(kfunc as i32));
    p.jump_if(JmpOp::Ne, Reg::R0, Src::Imm(0), done);
    // Room for the MAC addresses before moving them.
    p.push(Insn::ldx_mem(Size::W, Reg::R2, Reg::R6, 0));
    p.push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R6, 4));
    p.push(Insn::mov64_reg(Reg::R4, Reg::R2));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R4, 12));
    p.jump_if(JmpOp::Gt, Reg::R4, Src::Reg(Reg::R3), done);
    p.push(Insn::mov64_reg(Reg::R1, Reg::R6));
    p.push(Insn::mov64_imm(Reg::R2, -4));
    p.push(Insn::call(BPF_FUNC_XDP_ADJUST_HEAD));
    p.jump_if(JmpOp::Ne, Reg::R0, Src::Imm(0), done);
    // Packet pointers are new after adjust_head: reload and prove 16 bytes to the verifier.
    p.push(Insn::ldx_mem(Size::W, Reg::R2, Reg::R6, 0));
    p.push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R6, 4));
    p.push(Insn::mov64_reg(Reg::R4, Reg::R2));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R4, 16));
    p.jump_if(JmpOp::Gt, Reg::R4, Src::Reg(Reg::R3), done);
    // Destination, then source: MACs move 4 bytes to the front, in ascending order.
    for off in [0i16, 4, 8] {
        p.push(Insn::ldx_mem(Size::W, Reg::R5, Reg::R2, off + 4));
        p.push(Insn::stx_mem(Size::W, Reg::R2, Reg::R5, off));
    }
    p.push(Insn::ldx_mem(Size::H, Reg::R5, Reg::R10, -8));
    p.push(Insn::stx_mem(Size::H, Reg::R2, Reg::R5, 12));
    p.push(Insn::ldx_mem(Size::H, Reg::R5, Reg::R10, -6));
    p.push(Insn::to_be(Reg::R5, 16));
    p.push(Insn::stx_mem(Size::H, Reg::R2, Reg::R5, 14));
    p.bind(done);
    p.push(Insn::mov64_reg(Reg::R1, Reg::R6));
}

/// The device-bound redirect program: [`restore_vlan`] with `kfunc`, then
/// [`filtered_redirect_insns`] (or [`redirect_insns`] without a filter).
///
/// # Errors
/// As [`filtered_redirect_insns`].
fn vlan_redirect_insns(
    xsks: i32,
    filter: Option<&crate::filter::Filter>,
    kfunc: u32,
) -> std::result::Result<Vec<Insn>, super::insn::AsmError> {
    let mut p = Program::new();
    restore_vlan(&mut p, kfunc);
    match filter {
        Some(f) => p.extend(filtered_redirect_insns(xsks, f)?),
        None => p.extend(redirect_insns(xsks)),
    };
    p.finish()
}

/// Instructions of a program that returns `on_match` for frames `filter` accepts and
/// `on_miss` for the others (to check the translation with [`test_run`]).
///
/// # Errors
/// As [`filtered_redirect_insns`].
pub fn filter_action_insns(
    filter: &crate::filter::Filter,
    on_match: XdpAction,
    on_miss: XdpAction,
) -> std::result::Result<Vec<Insn>, super::insn::AsmError> {
    behind_filter(filter, returning(on_match), returning(on_miss))
}

/// `BPF_MAP_TYPE_XSKMAP`: RX queue index to AF_XDP socket, read by the redirect program.
// Implementation: this file; the map itself is a [`Map`].
#[derive(Debug)]
pub struct XskMap {
    map: Map,
}

impl XskMap {
    /// Creates an XSKMAP with one slot per RX queue index below `max_entries`.
    ///
    /// # Errors
    /// [`Error::NotPermitted`] without `CAP_BPF`/`CAP_NET_ADMIN`; [`Error::Syscall`] otherwise.
    pub fn new(max_entries: u32) -> Result<XskMap> {
        Ok(XskMap {
            map: Map::create(MapType::XskMap, 4, 4, max_entries, "fastpath_xsks")?,
        })
    }

    fn check_queue(&self, queue: u32) -> Result<()> {
        if queue < self.map.max_entries() {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                field: "queue",
                why: format!(
                    "queue {queue} is outside the XSKMAP (max_entries {})",
                    self.map.max_entries()
                ),
            })
        }
    }

    /// Sends frames of RX queue `queue` to the AF_XDP socket `xsk` (which must be bound to that
    /// queue, with an RX ring).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `queue` is out of range; [`Error::Syscall`] with `EOPNOTSUPP`
    /// if `xsk` is not a bound AF_XDP socket.
    pub fn set(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<()> {
        self.check_queue(queue)?;
        let fd = xsk.as_raw_fd() as u32;
        self.map.update(&queue.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Empties slot `queue`: its frames go to the kernel stack again. Emptying an empty slot is
    /// not an error.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `queue` is out of range; [`Error::Syscall`] otherwise.
    pub fn remove(&self, queue: u32) -> Result<()> {
        self.check_queue(queue)?;
        self.map.delete(&queue.to_ne_bytes()).map(drop)
    }

    /// Number of slots.
    pub fn max_entries(&self) -> u32 {
        self.map.max_entries()
    }
}

impl AsFd for XskMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }
}

/// A loaded XDP program (type `BPF_PROG_TYPE_XDP`, expected attach type `BPF_XDP`).
///
/// Dropping it closes our fd; the kernel keeps the program while an attachment uses it.
// Implementation: this file; loading in `sys.rs`.
#[derive(Debug)]
pub struct XdpProgram {
    fd: OwnedFd,
    id: u32,
    name: &'static str,
    restores_vlan: bool,
}

impl XdpProgram {
    /// Loads `insns` as an XDP program called `name` (at most 15 characters of
    /// `[A-Za-z0-9_.]`, shown by `bpftool prog` and `ip link`).
    ///
    /// # Errors
    /// [`Error::VerifierRejected`] with the verifier log; [`Error::NotPermitted`] without
    /// `CAP_BPF`/`CAP_NET_ADMIN`; [`Error::InvalidConfig`] for a bad name.
    pub fn load(name: &'static str, insns: &[Insn]) -> Result<XdpProgram> {
        let fd = sys::prog_load(&sys::LoadSpec::XDP, name, insns)?;
        XdpProgram::loaded(fd, name, false)
    }

    /// The program behind `fd`, just loaded as `name`.
    fn loaded(fd: OwnedFd, name: &'static str, restores_vlan: bool) -> Result<XdpProgram> {
        let id = sys::prog_info(fd.as_fd())?.id;
        Ok(XdpProgram {
            fd,
            id,
            name,
            restores_vlan,
        })
    }

    /// The redirect program for interface `ifindex` in native mode, behind `filter` if any:
    /// where the kernel has kfunc `bpf_xdp_metadata_rx_vlan_tag` (Linux 6.8+) and the driver
    /// supports device-bound programs, it first puts back an outer VLAN tag the device moved
    /// out of the frame ([`XdpProgram::restores_vlan`] says whether it does); otherwise it is
    /// [`XdpProgram::redirect_filtered`] / [`XdpProgram::redirect`]. Attach it to `ifindex`
    /// only, in native mode.
    ///
    /// # Errors
    /// As [`XdpProgram::redirect_filtered`].
    pub fn redirect_native(
        xsks: &XskMap,
        filter: Option<&crate::filter::Filter>,
        ifindex: u32,
    ) -> Result<XdpProgram> {
        let fd = xsks.as_fd().as_raw_fd();
        if let Some(kfunc) = super::btf::rx_vlan_tag_kfunc() {
            let insns = vlan_redirect_insns(fd, filter, kfunc)?;
            let spec = sys::LoadSpec {
                prog_flags: sys::BPF_F_XDP_DEV_BOUND_ONLY,
                prog_ifindex: ifindex,
                ..sys::LoadSpec::XDP
            };
            // The same names as the programs without the tag restore: the role is the same.
            let name = if filter.is_some() {
                "fastpath_filter"
            } else {
                "fastpath_redir"
            };
            match sys::prog_load(&spec, name, &insns) {
                Ok(fd) => return XdpProgram::loaded(fd, name, true),
                // A verifier rejection is a bug of ours: say so rather than hide it.
                Err(e @ Error::VerifierRejected { .. }) => return Err(e),
                // The driver cannot bind programs (or an older kernel): go without.
                Err(_) => {}
            }
        }
        match filter {
            Some(f) => XdpProgram::redirect_filtered(xsks, f),
            None => XdpProgram::redirect(xsks),
        }
    }

    /// Whether the program puts back VLAN tags the device moved out of frames (see
    /// [`XdpProgram::redirect_native`]).
    pub fn restores_vlan(&self) -> bool {
        self.restores_vlan
    }

    /// `fastpath_redir`: frames of RX queue *q* to the AF_XDP socket in slot *q* of `xsks`,
    /// `XDP_PASS` when the slot is empty. See [`redirect_insns`].
    ///
    /// # Errors
    /// As [`XdpProgram::load`].
    pub fn redirect(xsks: &XskMap) -> Result<XdpProgram> {
        XdpProgram::load("fastpath_redir", &redirect_insns(xsks.as_fd().as_raw_fd()))
    }

    /// `fastpath_filter`: [`XdpProgram::redirect`] for frames `filter` accepts, `XDP_PASS` for
    /// the rest. See [`filtered_redirect_insns`].
    ///
    /// # Errors
    /// As [`XdpProgram::load`]; [`Error::BpfAssemble`] for a filter too long to translate.
    pub fn redirect_filtered(xsks: &XskMap, filter: &crate::filter::Filter) -> Result<XdpProgram> {
        let insns = filtered_redirect_insns(xsks.as_fd().as_raw_fd(), filter)?;
        XdpProgram::load("fastpath_filter", &insns)
    }

    /// `fastpath_drop`: `XDP_DROP` for every frame (the receive ceiling in the lab).
    ///
    /// # Errors
    /// As [`XdpProgram::load`].
    pub fn drop() -> Result<XdpProgram> {
        XdpProgram::load("fastpath_drop", &action_insns(XdpAction::Drop))
    }

    /// `fastpath_pass`: `XDP_PASS` for every frame (enables veth NAPI for the AF_PACKET rungs).
    ///
    /// # Errors
    /// As [`XdpProgram::load`].
    pub fn pass() -> Result<XdpProgram> {
        XdpProgram::load("fastpath_pass", &action_insns(XdpAction::Pass))
    }

    /// `fastpath_tx`: `XDP_TX` for every frame (with [`test_run_live`], the traffic generator).
    ///
    /// # Errors
    /// As [`XdpProgram::load`].
    pub fn tx() -> Result<XdpProgram> {
        XdpProgram::load("fastpath_tx", &action_insns(XdpAction::Tx))
    }

    /// `fastpath_txflow`: the generator's multi-flow `XDP_TX` program ([`tx_flows_insns`]).
    ///
    /// # Errors
    /// As [`XdpProgram::load`]; [`Error::InvalidConfig`] for 0 flows.
    pub fn tx_flows(base: u16, flows: u16) -> Result<XdpProgram> {
        XdpProgram::load("fastpath_txflow", &tx_flows_insns(base, flows)?)
    }

    /// The kernel's id for this program (`bpftool prog show id <id>`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The name given at load time.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl AsFd for XdpProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

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

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Native (driver) mode, `XDP_FLAGS_DRV_MODE`: before any skb is allocated. Fast; needs
    /// driver support (veth, virtio_net, most 10G+ NICs; not `lo`).
    Native,
    /// Generic (skb) mode, `XDP_FLAGS_SKB_MODE`: works on every interface, after skb allocation,
    /// so several times slower. Never chosen implicitly.
    Generic,
    /// Offloaded to the NIC, `XDP_FLAGS_HW_MODE`. Only reported by [`attached`]; fastpath does
    /// not attach in this mode.
    Offload,
}

impl Mode {
    fn flag(self) -> u32 {
        match self {
            Mode::Native => XDP_FLAGS_DRV_MODE,
            Mode::Generic => XDP_FLAGS_SKB_MODE,
            Mode::Offload => XDP_FLAGS_HW_MODE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
            Mode::Offload => "offload",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An XDP program found on an interface by [`attached`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// Program id.
    pub id: u32,
    /// Program name, `None` if it could not be read (needs `CAP_SYS_ADMIN`).
    pub name: Option<String>,
    /// The mode it is attached in.
    pub mode: Mode,
}

fn programs_of(state: &LinkXdp) -> Vec<(Mode, u32)> {
    if state.attached == XDP_ATTACHED_NONE {
        return Vec::new();
    }
    let mut v = Vec::new();
    for (mode, id) in [
        (Mode::Native, state.drv_prog_id),
        (Mode::Generic, state.skb_prog_id),
        (Mode::Offload, state.hw_prog_id),
    ] {
        if id != 0 {
            v.push((mode, id));
        }
    }
    debug_assert!(state.attached != XDP_ATTACHED_MULTI || v.len() > 1);
    v
}

/// The name of program `id`, if it can be opened and read.
fn prog_name(id: u32) -> Option<String> {
    let fd = sys::prog_get_fd_by_id(id).ok()?;
    let info = sys::prog_info(fd.as_fd()).ok()?;
    Some(sys::lossy_until_nul(&info.name))
}

/// The XDP programs attached to interface `ifindex` (in the calling thread's namespace), one per
/// mode in use; empty if none. Asks rtnetlink (`RTM_GETLINK`, `IFLA_XDP`), as `ip link` does.
///
/// # Errors
/// [`Error::NoSuchInterface`] for an unknown index; [`Error::Syscall`] otherwise.
pub fn attached(ifindex: u32) -> Result<Vec<AttachedProgram>> {
    let state = rtnl::get_link_xdp(ifindex)?;
    Ok(programs_of(&state)
        .into_iter()
        .map(|(mode, id)| AttachedProgram {
            id,
            name: prog_name(id),
            mode,
        })
        .collect())
}

/// `if_nametoindex(name)`—The index of interface `name` in the calling thread's namespace.
///
/// # Errors
/// [`Error::NoSuchInterface`]; [`Error::InvalidConfig`] for a name no interface can have.
pub fn ifindex(name: &str) -> Result<u32> {
    crate::sys::ifindex(name)
}

fn already_attached(state: &LinkXdp, mode: Mode, id: u32) -> Error {
    Error::XdpAlreadyAttached {
        ifname: state.ifname.clone(),
        ifindex: state.ifindex,
        id,
        name: prog_name(id).unwrap_or_else(|| "<unknown>".to_owned()),
        mode: mode.name(),
    }
}

/// Detach program `id` (mode `mode`) from the interface, whoever attached it: through netlink
/// if it was attached that way, else by finding its `bpf_link` and detaching that
/// (`BPF_LINK_DETACH`, as `bpftool link detach` does; the owner's fd then points to a dead link).
fn remove_existing(state: &LinkXdp, mode: Mode, id: u32) -> Result<()> {
    let by_netlink = rtnl::set_link_xdp_fd(state.ifindex, -1, mode.flag());
    match by_netlink {
        Ok(()) => return Ok(()),
        // "Can't replace active BPF XDP link": a link owns the hook.
        Err(ref e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(e),
    }
    let mut next = 0;
    while let Some(link_id) = sys::link_get_next_id(next)? {
        next = link_id;
        let Ok(link) = sys::link_get_fd_by_id(link_id) else {
            continue; // gone meanwhile
        };
        let info = sys::link_info(link.as_fd())?;
        if info.r#type == sys::BPF_LINK_TYPE_XDP
            && info.prog_id == id
            && info.xdp_ifindex == state.ifindex
        {
            return sys::link_detach(link.as_fd());
        }
    }
    Err(Error::Syscall {
        call: "BPF_LINK_DETACH",
        source: std::io::Error::other(format!(
            "program {id} on `{}` is held by a bpf_link that could not be found",
            state.ifname
        )),
    })
}

/// Kernel version from `/proc/sys/kernel/osrelease` ("6.18.44-..." -> (6, 18)).
fn kernel_version() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = s.trim().split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[derive(Debug)]
enum How {
    /// A `bpf_link`: closing the fd detaches.
    Link(OwnedFd),
    /// Legacy netlink attachment (kernels before 5.9): detached explicitly on drop.
    Netlink,
}

/// An XDP program attached to an interface. Dropping it detaches the program.
///
/// Made with a `bpf_link` where the kernel has them (5.9+), so the program also goes away when
/// the process dies, even by `kill -9`. On older kernels it falls back to the netlink attach
/// (`IFLA_XDP_FD`), detached on drop only: a killed process leaves the program attached.
// Implementation: this file.
#[derive(Debug)]
pub struct XdpAttachment {
    ifindex: u32,
    ifname: String,
    mode: Mode,
    prog_id: u32,
    how: How,
}

impl XdpAttachment {
    /// Attaches `prog` to interface `ifindex` (in the calling thread's namespace) in `mode`.
    ///
    /// First asks rtnetlink whether a program is attached already (in any mode). If one is and
    /// `replace` is false, fails with [`Error::XdpAlreadyAttached`] naming it; if `replace` is
    /// true, detaches it first (there is a short window with no program, in which frames go to
    /// the kernel stack).
    ///
    /// # Errors
    /// - [`Error::XdpAlreadyAttached`] as above (also when another program appears meanwhile);
    /// - [`Error::Unsupported`] if `mode` is [`Mode::Native`] and the driver has no native XDP:
    ///   the message says generic mode is the fallback and must be asked for;
    /// - [`Error::NoSuchInterface`], [`Error::NotPermitted`] (`CAP_NET_ADMIN`, plus
    ///   `CAP_SYS_ADMIN` to name or replace another program), [`Error::Syscall`].
    pub fn attach(
        prog: &XdpProgram,
        ifindex: u32,
        mode: Mode,
        replace: bool,
    ) -> Result<XdpAttachment> {
        if mode == Mode::Offload {
            return Err(Error::Unsupported {
                backend: "xdp",
                why: "hardware offload needs a program bound to the device at load time".into(),
                fix: "attach in Mode::Native",
            });
        }
        let state = rtnl::get_link_xdp(ifindex)?;
        let existing = programs_of(&state);
        if let Some(&(m, id)) = existing.first() {
            if !replace {
                return Err(already_attached(&state, m, id));
            }
            for &(m, id) in &existing {
                remove_existing(&state, m, id)?;
            }
        }
        let attachment = |how| XdpAttachment {
            ifindex,
            ifname: state.ifname.clone(),
            mode,
            prog_id: prog.id(),
            how,
        };
        let e = match sys::link_create_xdp(prog.as_fd(), ifindex, mode.flag()) {
            Ok(link) => return Ok(attachment(How::Link(link))),
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) if mode == Mode::Native => Err(Error::Unsupported {
                backend: "xdp",
                why: format!(
                    "the driver of `{}` has no native XDP (bpf_link_create: EOPNOTSUPP)",
                    state.ifname
                ),
                fix: "generic (skb) mode is the fallback and must be asked for explicitly: \
                      Mode::Generic (CLI `--xdp-mode generic`); it is several times slower",
            }),
            // Someone attached meanwhile, or (EEXIST) the other mode is in use.
            Some(libc::EBUSY) | Some(libc::EEXIST) => {
                let now = rtnl::get_link_xdp(ifindex)?;
                match programs_of(&now).first() {
                    Some(&(m, id)) => Err(already_attached(&now, m, id)),
                    None => Err(sys::bpf_error("bpf(BPF_LINK_CREATE)", "CAP_NET_ADMIN", e)),
                }
            }
            // Kernels before 5.9 have no XDP links and say EINVAL.
            Some(libc::EINVAL) if kernel_version().is_some_and(|v| v < (5, 9)) => {
                rtnl::set_link_xdp_fd(
                    ifindex,
                    prog.as_fd().as_raw_fd(),
                    mode.flag() | rtnl::XDP_FLAGS_UPDATE_IF_NOEXIST,
                )?;
                Ok(attachment(How::Netlink))
            }
            _ => Err(sys::bpf_error("bpf(BPF_LINK_CREATE)", "CAP_NET_ADMIN", e)),
        }
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface name at attach time.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The mode attached in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// Whether the attachment is a `bpf_link` (false: the netlink fallback of old kernels).
    pub fn is_link(&self) -> bool {
        matches!(self.how, How::Link(_))
    }

    /// Detaches now, reporting failure (dropping detaches too, silently). When this returns,
    /// the program is off the interface (`BPF_LINK_DETACH`, not just a close).
    ///
    /// # Errors
    /// [`Error::Syscall`] from `BPF_LINK_DETACH`, or the `RTM_SETLINK` error of the netlink
    /// fallback.
    pub fn detach(mut self) -> Result<()> {
        self.detach_inner()
    }

    fn detach_inner(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.how, How::Netlink) {
            // Closing the last fd of the link would detach it too (bpf_link_release), but ours
            // may not be the last: a fork in another thread duplicates the fd table until the
            // child execs. BPF_LINK_DETACH detaches now whoever else holds the link; it answers 0
            // for a link someone already detached (replace = true elsewhere).
            How::Link(fd) => {
                self.prog_id = 0;
                sys::link_detach(fd.as_fd())
            }
            How::Netlink if self.prog_id == 0 => Ok(()),
            How::Netlink => {
                let id = std::mem::take(&mut self.prog_id);
                // Only if our program is still the one attached: never remove another's.
                let state = rtnl::get_link_xdp(self.ifindex)?;
                if programs_of(&state).contains(&(self.mode, id)) {
                    rtnl::set_link_xdp_fd(self.ifindex, -1, self.mode.flag())?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        // Errors can only come from the netlink fallback; there is nobody to report them to.
        let _ = self.detach_inner();
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::bpf::insn::to_bytes;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_action_programs() {
        for (action, code) in [
            (XdpAction::Aborted, 0u8),
            (XdpAction::Drop, 1),
            (XdpAction::Pass, 2),
            (XdpAction::Tx, 3),
        ] {
            assert_eq!(
                to_bytes(&action_insns(action)),
                [
                    0xb7, 0x00, 0x00, 0x00, code, 0x00, 0x00, 0x00, //
                    0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                ]
            );
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_redirect_program() {
        #[rustfmt::skip]
        let want: [u8; 48] = [
            0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u32 *)(r1 + 16)
            0x18, 0x11, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // r1 = map[fd 7] ll
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // r3 = 2 (XDP_PASS)
            0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, // call 51
            0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
        ];
        assert_eq!(to_bytes(&redirect_insns(7)), want);
    }

    #[test]
    fn actions_round_trip() {
        for v in 0..5 {
            assert_eq!(XdpAction::from_raw(v).map(|a| a as u32), Some(v));
        }
        assert_eq!(XdpAction::from_raw(5), None);
    }

    #[test]
    fn programs_of_lists_each_mode() {
        let mut s = LinkXdp::default();
        assert!(programs_of(&s).is_empty());
        s.attached = 1;
        s.drv_prog_id = 9;
        assert_eq!(programs_of(&s), [(Mode::Native, 9)]);
        s.attached = XDP_ATTACHED_MULTI;
        s.hw_prog_id = 11;
        assert_eq!(programs_of(&s), [(Mode::Native, 9), (Mode::Offload, 11)]);
    }

    #[test]
    fn kernel_version_parses() {
        let v = kernel_version().expect("/proc/sys/kernel/osrelease is readable on Linux");
        assert!(v >= (3, 0));
    }

    /// `replace = true` over programs attached the legacy way (netlink, as `ip link set xdp` and
    /// libxdp do), in the same and in the other mode. Root; skipped otherwise.
    #[test]
    fn replace_takes_over_netlink_attached_programs() {
        use fastpath_testutil::{have_cmd, is_root, require, NetNs};
        require!(is_root() && have_cmd("ip"), "needs root and `ip`");
        let ns = NetNs::new("fpbu");
        let v = ns.veth_pair("fpbu_a", "fpbu_b");
        let old = XdpProgram::pass().unwrap();
        let new = XdpProgram::drop().unwrap();
        for old_mode in [Mode::Native, Mode::Generic] {
            rtnl::set_link_xdp_fd(v.a_index, old.as_fd().as_raw_fd(), old_mode.flag()).unwrap();
            match XdpAttachment::attach(&new, v.a_index, Mode::Native, false) {
                Err(Error::XdpAlreadyAttached { id, name, mode, .. }) => {
                    assert_eq!(
                        (id, name.as_str(), mode),
                        (old.id(), "fastpath_pass", old_mode.name())
                    );
                }
                other => panic!("expected XdpAlreadyAttached, got {other:?}"),
            }
            let att = XdpAttachment::attach(&new, v.a_index, Mode::Native, true).unwrap();
            assert!(att.is_link());
            let now = attached(v.a_index).unwrap();
            assert_eq!(now.len(), 1);
            assert_eq!((now[0].id, now[0].mode), (new.id(), Mode::Native));
            drop(att);
            assert!(attached(v.a_index).unwrap().is_empty());
        }
    }

    /// The netlink fallback (kernels before 5.9) detaches on drop, but only its own program.
    /// Root; skipped otherwise.
    #[test]
    fn netlink_fallback_drop_removes_only_its_own_program() {
        use fastpath_testutil::{have_cmd, is_root, require, NetNs};
        require!(is_root() && have_cmd("ip"), "needs root and `ip`");
        let ns = NetNs::new("fpbu");
        let v = ns.veth_pair("fpbu_a", "fpbu_b");
        let ours = XdpProgram::pass().unwrap();
        let theirs = XdpProgram::drop().unwrap();
        let fallback = |prog: &XdpProgram| {
            rtnl::set_link_xdp_fd(v.a_index, prog.as_fd().as_raw_fd(), XDP_FLAGS_SKB_MODE).unwrap();
            XdpAttachment {
                ifindex: v.a_index,
                ifname: v.a.clone(),
                mode: Mode::Generic,
                prog_id: prog.id(),
                how: How::Netlink,
            }
        };
        let att = fallback(&ours);
        assert!(!att.is_link());
        att.detach().unwrap();
        assert!(attached(v.a_index).unwrap().is_empty());

        // Someone replaced our program meanwhile: dropping ours must leave theirs alone.
        let att = fallback(&ours);
        rtnl::set_link_xdp_fd(v.a_index, theirs.as_fd().as_raw_fd(), XDP_FLAGS_SKB_MODE).unwrap();
        drop(att);
        assert_eq!(attached(v.a_index).unwrap()[0].id, theirs.id());
        rtnl::set_link_xdp_fd(v.a_index, -1, XDP_FLAGS_SKB_MODE).unwrap();
        assert!(attached(v.a_index).unwrap().is_empty());
    }

    #[test]
    fn short_frames_are_refused_before_the_syscall() {
        assert!(matches!(
            check_frame(&[0; 13]),
            Err(Error::InvalidConfig { field: "frame", .. })
        ));
        assert!(check_frame(&[0; 14]).is_ok());
    }
}
