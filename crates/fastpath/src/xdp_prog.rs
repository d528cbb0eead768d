//! The XDP programs fastpath loads, composed from the eBPF assembler ([`crate::bpf::insn`]) and,
//! for filtered capture, the filter compiler's eBPF translation: the AF_XDP redirect (plain,
//! behind a filter, and device-bound with the VLAN tag restore), the fixed-verdict programs, and
//! the lab generator's multi-flow `XDP_TX` program. Each is a function returning its
//! instructions (sans-IO, golden-byte tested) and an [`XdpProgram`] constructor that loads it.
//!
//! This module sits above both `bpf` (loader, maps, attach) and `filter` (compiler): neither of
//! them imports it.
//!
//! # References
//! - <https://docs.kernel.org/bpf/redirect.html>
//! - <https://docs.kernel.org/networking/af_xdp.html>

use std::os::fd::{AsFd, AsRawFd};

use crate::bpf::insn::{AluOp, AsmError, Insn, JmpOp, Program, Reg, Size, Src};
use crate::bpf::{btf, XdpAction, XdpProgram, XskMap};
use crate::filter::Filter;
use crate::{Error, Result};

/// `BPF_FUNC_redirect_map` (`enum bpf_func_id`).
pub const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

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

/// Layout of the generator's state map ([`GenState`]): one array entry of six `u64`s.
pub mod gen_state {
    /// Theoretical arrival time of the next frame (GCRA), in 1/256 ns of `bpf_ktime_get_ns`.
    pub const TAT: i16 = 0;
    /// Frame interval in 1/256 ns (0: no pacing, as fast as the CPU goes).
    pub const INTERVAL: i16 = 8;
    /// Burst tolerance in 1/256 ns (how far ahead of schedule a frame may go).
    pub const TAU: i16 = 16;
    /// Frames transmitted (`XDP_TX` verdicts) so far.
    pub const TX: i16 = 24;
    /// Stop transmitting after this many frames (`u64::MAX`: no limit).
    pub const LIMIT: i16 = 32;
    /// Frames of flow 0 transmitted (the flow the lab's filtered rows select).
    pub const FLOW0: i16 = 40;
    /// Bytes per entry.
    pub const SIZE: u32 = 48;
}

/// `bpf_map_lookup_elem`, `bpf_ktime_get_ns`, `bpf_get_prandom_u32` (`enum bpf_func_id`).
const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_KTIME_GET_NS: i32 = 5;
const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;

/// Instructions of the lab generator's paced program, run with live frames
/// (`BPF_F_TEST_XDP_LIVE_FRAMES`): each frame the kernel offers is either sent (`XDP_TX`) or
/// dropped (`XDP_DROP`, recycled at once), so the transmitted stream is paced *inside the
/// kernel*, frame by frame, by a GCRA (virtual scheduling) rate limiter on `bpf_ktime_get_ns`:
///
/// ```text
/// state = map[0]; if !state: drop
/// if state.tx >= state.limit: drop
/// if state.interval:                       // paced
///     now = ktime_get_ns() << 8            // 1/256 ns units
///     tat = max(state.tat, now)
///     if tat > now + state.tau: drop       // ahead of schedule
///     state.tat = tat + state.interval
/// state.tx += 1
/// flows > 1: port = base + prandom() % flows, written to the UDP source port;
///            flow 0 counted in state.flow0
/// return XDP_TX
/// ```
///
/// A user-space pacer can only send bursts (each `BPF_PROG_TEST_RUN` call has a fixed cost of
/// ~30 ms, so calls must be large); bursts overflow the 256-frame ring of the receiving veth
/// long before the receiver is busy. Here the largest burst is the kernel's live-frames batch
/// (64 frames, flushed together). The generator's CPU stays busy at any rate: frames not sent
/// are dropped (a page-pool recycle each). The map is written by one CPU only (live frames run
/// on the calling CPU with migration disabled), so plain loads and stores suffice.
///
/// # Errors
/// [`Error::InvalidConfig`] if `flows` is 0.
pub fn tx_paced_insns(state_fd: i32, base: u16, flows: u16) -> Result<Vec<Insn>> {
    use gen_state::*;
    if flows == 0 {
        return Err(Error::InvalidConfig {
            field: "flows",
            why: "0 flows: give at least 1".into(),
        });
    }
    let mut p = Program::new();
    let drop = p.label();
    let send = p.label();
    let tx = p.label();
    let later = p.label();
    let not_flow0 = p.label();
    let [map_lo, map_hi] = Insn::ld_map_fd(Reg::R1, state_fd);
    // r6 = ctx; r7 = &state
    p.push(Insn::mov64_reg(Reg::R6, Reg::R1))
        .push(Insn::st_mem(Size::W, Reg::R10, -4, 0))
        .push(Insn::mov64_reg(Reg::R2, Reg::R10))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R2, -4))
        .push(map_lo)
        .push(map_hi)
        .push(Insn::call(BPF_FUNC_MAP_LOOKUP_ELEM))
        .jump_if(JmpOp::Eq, Reg::R0, Src::Imm(0), drop)
        .push(Insn::mov64_reg(Reg::R7, Reg::R0))
        // The limit.
        .push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R7, TX))
        .push(Insn::ldx_mem(Size::DW, Reg::R2, Reg::R7, LIMIT))
        .jump_if(JmpOp::Ge, Reg::R1, Src::Reg(Reg::R2), drop)
        // The pacing.
        .push(Insn::ldx_mem(Size::DW, Reg::R8, Reg::R7, INTERVAL))
        .jump_if(JmpOp::Eq, Reg::R8, Src::Imm(0), send)
        .push(Insn::call(BPF_FUNC_KTIME_GET_NS))
        .push(Insn::alu64_imm(AluOp::Lsh, Reg::R0, 8))
        .push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R7, TAT))
        .jump_if(JmpOp::Ge, Reg::R1, Src::Reg(Reg::R0), later)
        .push(Insn::mov64_reg(Reg::R1, Reg::R0))
        .bind(later)
        .push(Insn::ldx_mem(Size::DW, Reg::R2, Reg::R7, TAU))
        .push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R0))
        .jump_if(JmpOp::Gt, Reg::R1, Src::Reg(Reg::R2), drop)
        .push(Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R8))
        .push(Insn::stx_mem(Size::DW, Reg::R7, Reg::R1, TAT))
        .bind(send)
        .push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R7, TX))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1))
        .push(Insn::stx_mem(Size::DW, Reg::R7, Reg::R1, TX));
    if flows > 1 {
        // r9 = data; bounds check bytes 34..36 (the verifier tracks r9 with r2: same id).
        p.push(Insn::ldx_mem(Size::W, Reg::R9, Reg::R6, 0))
            .push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R6, 4))
            .push(Insn::mov64_reg(Reg::R2, Reg::R9))
            .push(Insn::alu64_imm(AluOp::Add, Reg::R2, 36))
            .jump_if(JmpOp::Gt, Reg::R2, Src::Reg(Reg::R3), tx)
            .push(Insn::call(BPF_FUNC_GET_PRANDOM_U32))
            .push(Insn::alu32_imm(AluOp::Mod, Reg::R0, i32::from(flows)))
            .jump_if(JmpOp::Ne, Reg::R0, Src::Imm(0), not_flow0)
            .push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R7, FLOW0))
            .push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1))
            .push(Insn::stx_mem(Size::DW, Reg::R7, Reg::R1, FLOW0))
            .bind(not_flow0)
            .push(Insn::alu64_imm(AluOp::Add, Reg::R0, i32::from(base)))
            .push(Insn::mov64_reg(Reg::R1, Reg::R0))
            .push(Insn::alu64_imm(AluOp::Rsh, Reg::R1, 8))
            .push(Insn::stx_mem(Size::B, Reg::R9, Reg::R1, 34))
            .push(Insn::stx_mem(Size::B, Reg::R9, Reg::R0, 35));
    } else {
        p.push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R7, FLOW0))
            .push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1))
            .push(Insn::stx_mem(Size::DW, Reg::R7, Reg::R1, FLOW0));
    }
    p.bind(tx)
        .extend(action_insns(XdpAction::Tx))
        .bind(drop)
        .extend(action_insns(XdpAction::Drop));
    Ok(p.finish()?)
}

/// The generator's state: the array map [`tx_paced_insns`] reads and writes ([`gen_state`]).
#[derive(Debug)]
pub struct GenState {
    map: crate::bpf::Map,
}

/// What [`GenState::read`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenCounts {
    /// Frames transmitted.
    pub tx: u64,
    /// Frames of flow 0 transmitted.
    pub flow0: u64,
}

impl GenState {
    /// A fresh state: `rate` frames per second (`None`: unpaced), bursts of at most `burst`
    /// frames ahead of schedule, at most `limit` frames in all (`None`: no limit).
    ///
    /// # Errors
    /// As [`crate::bpf::Map::create`]; [`Error::InvalidConfig`] for a rate of 0.
    pub fn new(rate: Option<u64>, burst: u32, limit: Option<u64>) -> Result<GenState> {
        let map = crate::bpf::Map::create(
            crate::bpf::MapType::Array,
            4,
            gen_state::SIZE,
            1,
            "fp_gen_state",
        )?;
        let s = GenState { map };
        s.configure(rate, burst, limit)?;
        Ok(s)
    }

    /// Sets the rate, burst and limit and clears the counters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a rate of 0; [`Error::Syscall`] if the map update fails.
    pub fn configure(&self, rate: Option<u64>, burst: u32, limit: Option<u64>) -> Result<()> {
        let interval = match rate {
            None => 0,
            Some(0) => {
                return Err(Error::InvalidConfig {
                    field: "rate",
                    why: "0 frames per second: give at least 1".into(),
                })
            }
            // 1/256 ns per frame; at most 2.56e11 (1 frame per second), at least 1.
            Some(r) => ((256u128 * 1_000_000_000) / u128::from(r)).max(1) as u64,
        };
        let mut v = [0u8; gen_state::SIZE as usize];
        let mut put = |off: i16, x: u64| {
            let o = off as usize;
            v[o..o + 8].copy_from_slice(&x.to_ne_bytes());
        };
        put(gen_state::INTERVAL, interval);
        put(
            gen_state::TAU,
            interval.saturating_mul(u64::from(burst.max(1))),
        );
        put(gen_state::LIMIT, limit.unwrap_or(u64::MAX));
        self.map.update(&0u32.to_ne_bytes(), &v)
    }

    /// The counters now.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the map lookup fails.
    pub fn read(&self) -> Result<GenCounts> {
        let mut v = [0u8; gen_state::SIZE as usize];
        self.map.lookup(&0u32.to_ne_bytes(), &mut v)?;
        let get = |off: i16| {
            let o = off as usize;
            u64::from_ne_bytes(v[o..o + 8].try_into().expect("8 bytes"))
        };
        Ok(GenCounts {
            tx: get(gen_state::TX),
            flow0: get(gen_state::FLOW0),
        })
    }
}

/// Instructions of the lab's counting pass program: `XDP_PASS` for every frame, and a count of
/// the frames whose UDP source port (bytes 34..36 of an Ethernet/IPv4 frame without options)
/// is `port`, in entry 0 of the array map `counter_fd` (one `u64`). One receive queue's NAPI
/// runs on one CPU at a time, so a plain load-add-store suffices.
pub fn pass_counting_insns(counter_fd: i32, port: u16) -> Vec<Insn> {
    let mut p = Program::new();
    let pass = p.label();
    let [map_lo, map_hi] = Insn::ld_map_fd(Reg::R1, counter_fd);
    // The port as a little-endian load of its two big-endian bytes sees it.
    let raw = i32::from(u16::from_ne_bytes(port.to_be_bytes()));
    p.push(Insn::ldx_mem(Size::W, Reg::R2, Reg::R1, 0))
        .push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R1, 4))
        .push(Insn::mov64_reg(Reg::R4, Reg::R2))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R4, 36))
        .jump_if(JmpOp::Gt, Reg::R4, Src::Reg(Reg::R3), pass)
        .push(Insn::ldx_mem(Size::H, Reg::R6, Reg::R2, 34))
        .jump_if(JmpOp::Ne, Reg::R6, Src::Imm(raw), pass)
        .push(Insn::st_mem(Size::W, Reg::R10, -4, 0))
        .push(Insn::mov64_reg(Reg::R2, Reg::R10))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R2, -4))
        .push(map_lo)
        .push(map_hi)
        .push(Insn::call(BPF_FUNC_MAP_LOOKUP_ELEM))
        .jump_if(JmpOp::Eq, Reg::R0, Src::Imm(0), pass)
        .push(Insn::ldx_mem(Size::DW, Reg::R1, Reg::R0, 0))
        .push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1))
        .push(Insn::stx_mem(Size::DW, Reg::R0, Reg::R1, 0))
        .bind(pass)
        .extend(action_insns(XdpAction::Pass));
    p.finish()
        .expect("a fixed program with bound labels assembles")
}

/// The counter [`pass_counting_insns`] adds to.
#[derive(Debug)]
pub struct FrameCounter {
    map: crate::bpf::Map,
}

impl FrameCounter {
    /// A counter at 0.
    ///
    /// # Errors
    /// As [`crate::bpf::Map::create`].
    pub fn new() -> Result<FrameCounter> {
        let map = crate::bpf::Map::create(crate::bpf::MapType::Array, 4, 8, 1, "fp_count")?;
        Ok(FrameCounter { map })
    }

    /// The count now.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the map lookup fails.
    pub fn read(&self) -> Result<u64> {
        let mut v = [0u8; 8];
        self.map.lookup(&0u32.to_ne_bytes(), &mut v)?;
        Ok(u64::from_ne_bytes(v))
    }
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
/// [`AsmError`] if the translated program cannot be assembled (jumps
/// beyond the 16-bit range: a filter of many thousand instructions).
pub fn filtered_redirect_insns(
    xsks: i32,
    filter: &Filter,
) -> std::result::Result<Vec<Insn>, AsmError> {
    // r6 holds the context (see filter::ebpf); the redirect expects it in r1.
    let mut on_accept = vec![Insn::mov64_reg(Reg::R1, Reg::R6)];
    on_accept.extend(redirect_insns(xsks));
    behind_filter(filter, on_accept, returning(XdpAction::Pass))
}

/// `filter` translated to eBPF, then `on_accept` where it accepts and `on_reject` where it
/// rejects (each only if some path gets there: the verifier refuses unreachable code).
fn behind_filter(
    filter: &Filter,
    on_accept: Vec<Insn>,
    on_reject: Vec<Insn>,
) -> std::result::Result<Vec<Insn>, AsmError> {
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

/// The redirect program with a constant `stamp` written as each frame's receive timestamp:
/// tests the metadata path on devices whose driver has no stamps (veth).
#[cfg(test)]
pub(crate) fn fixed_stamp_redirect(xsks: &XskMap, stamp: i32) -> Result<XdpProgram> {
    let mut p = Program::new();
    stamp_rx_from(&mut p, Stamp::Fixed(stamp));
    p.extend(redirect_insns(xsks.as_fd().as_raw_fd()));
    let insns = p.finish()?;
    Ok(XdpProgram::load("fastpath_redir", &insns)?.with_rx_timestamps())
}

/// The error for `-j adapter` on `xdp` where the receive metadata cannot be read.
fn no_rx_timestamps(why: String) -> Error {
    Error::Unsupported {
        backend: "xdp",
        why,
        fix: "capture with -j host (a stamp per batch), or -j adapter on -b mmap",
    }
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

/// `bpf_xdp_adjust_meta`.
const BPF_FUNC_XDP_ADJUST_META: i32 = 54;
/// Offsets of `data`, `data_meta` in `struct xdp_md`.
const XDP_MD_DATA: i16 = 0;
const XDP_MD_DATA_META: i16 = 8;

/// Bytes of metadata the timestamp program puts in front of each frame: the receive time in
/// nanoseconds (host byte order), 0 when the driver had none for the frame.
pub const RX_TIMESTAMP_META_LEN: usize = 8;

/// Appends code that asks the driver for the frame's receive timestamp (`kfunc`: the BTF id of
/// `bpf_xdp_metadata_rx_timestamp`; the program must be device-bound) and writes it, or 0 when
/// the driver has none for this frame, into [`RX_TIMESTAMP_META_LEN`] bytes of XDP metadata
/// right before the frame (`bpf_xdp_adjust_meta`), which AF_XDP copies into the UMEM with it.
/// Whenever the metadata fits (always, with the headroom every driver gives) it is written, so
/// user space never reads a stale stamp of an earlier frame.
///
/// Entered and left with the context in `r1`; clobbers `r0`–`r6` and 8 bytes of stack at
/// `r10 - 16`.
fn stamp_rx(p: &mut Program, kfunc: u32) {
    stamp_rx_from(p, Stamp::Kfunc(kfunc));
}

/// Where [`stamp_rx_from`] takes the timestamp.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// kfunc `bpf_xdp_metadata_rx_timestamp` (its BTF id).
    Kfunc(u32),
    /// A constant, for testing the metadata path on devices without stamps.
    #[cfg(test)]
    Fixed(i32),
}

fn stamp_rx_from(p: &mut Program, stamp: Stamp) {
    let done = p.label();
    p.push(Insn::mov64_reg(Reg::R6, Reg::R1));
    // u64 timestamp at r10-16, zeroed: the kfunc writes it only on success.
    p.push(Insn::st_mem(Size::DW, Reg::R10, -16, 0));
    match stamp {
        Stamp::Kfunc(kfunc) => {
            p.push(Insn::mov64_reg(Reg::R2, Reg::R10));
            p.push(Insn::alu64_imm(AluOp::Add, Reg::R2, -16));
            p.push(Insn::call_kfunc(kfunc as i32));
        }
        #[cfg(test)]
        Stamp::Fixed(v) => {
            p.push(Insn::st_mem(Size::DW, Reg::R10, -16, v));
        }
    }
    p.push(Insn::mov64_reg(Reg::R1, Reg::R6));
    p.push(Insn::mov64_imm(Reg::R2, -(RX_TIMESTAMP_META_LEN as i32)));
    p.push(Insn::call(BPF_FUNC_XDP_ADJUST_META));
    p.jump_if(JmpOp::Ne, Reg::R0, Src::Imm(0), done);
    // Prove the 8 bytes of metadata to the verifier: data_meta + 8 <= data.
    p.push(Insn::ldx_mem(Size::W, Reg::R2, Reg::R6, XDP_MD_DATA_META));
    p.push(Insn::ldx_mem(Size::W, Reg::R3, Reg::R6, XDP_MD_DATA));
    p.push(Insn::mov64_reg(Reg::R4, Reg::R2));
    p.push(Insn::alu64_imm(
        AluOp::Add,
        Reg::R4,
        RX_TIMESTAMP_META_LEN as i32,
    ));
    p.jump_if(JmpOp::Gt, Reg::R4, Src::Reg(Reg::R3), done);
    p.push(Insn::ldx_mem(Size::DW, Reg::R5, Reg::R10, -16));
    p.push(Insn::stx_mem(Size::DW, Reg::R2, Reg::R5, 0));
    p.bind(done);
    p.push(Insn::mov64_reg(Reg::R1, Reg::R6));
}

/// The device-bound redirect program: [`restore_vlan`] with `vlan` (when given), then
/// [`stamp_rx`] with `stamp` (when given), then [`filtered_redirect_insns`] (or
/// [`redirect_insns`] without a filter).
///
/// # Errors
/// As [`filtered_redirect_insns`].
fn vlan_redirect_insns(
    xsks: i32,
    filter: Option<&Filter>,
    vlan: Option<u32>,
    stamp: Option<u32>,
) -> std::result::Result<Vec<Insn>, AsmError> {
    let mut p = Program::new();
    if let Some(kfunc) = vlan {
        restore_vlan(&mut p, kfunc);
    }
    if let Some(kfunc) = stamp {
        stamp_rx(&mut p, kfunc);
    }
    match filter {
        Some(f) => p.extend(filtered_redirect_insns(xsks, f)?),
        None => p.extend(redirect_insns(xsks)),
    };
    p.finish()
}

/// Instructions of a program that returns `on_match` for frames `filter` accepts and
/// `on_miss` for the others (to check the translation with
/// [`test_run`](crate::bpf::test_run)).
///
/// # Errors
/// As [`filtered_redirect_insns`].
pub fn filter_action_insns(
    filter: &Filter,
    on_match: XdpAction,
    on_miss: XdpAction,
) -> std::result::Result<Vec<Insn>, AsmError> {
    behind_filter(filter, returning(on_match), returning(on_miss))
}

/// Constructors of the programs above (the type and [`XdpProgram::load`] are in `bpf/load.rs`).
impl XdpProgram {
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
        filter: Option<&Filter>,
        ifindex: u32,
    ) -> Result<XdpProgram> {
        XdpProgram::redirect_native_with(xsks, filter, ifindex, false)
    }

    /// [`XdpProgram::redirect_native`], and with `rx_timestamps` each frame's receive
    /// timestamp from the driver's XDP metadata (kfunc `bpf_xdp_metadata_rx_timestamp`) in the
    /// [`RX_TIMESTAMP_META_LEN`] bytes before the frame, 0 where the driver had none for it
    /// ([`XdpProgram::rx_timestamps`] is then true).
    ///
    /// # Errors
    /// As [`XdpProgram::redirect_filtered`]; with `rx_timestamps`,
    /// [`Error::Unsupported`] where the kernel has no such kfunc or the driver cannot bind
    /// programs.
    pub fn redirect_native_with(
        xsks: &XskMap,
        filter: Option<&Filter>,
        ifindex: u32,
        rx_timestamps: bool,
    ) -> Result<XdpProgram> {
        let fd = xsks.as_fd().as_raw_fd();
        if rx_timestamps {
            let Some(stamp) = btf::rx_timestamp_kfunc() else {
                return Err(no_rx_timestamps(
                    "the kernel has no kfunc bpf_xdp_metadata_rx_timestamp (Linux 6.3+)".into(),
                ));
            };
            let vlan = btf::rx_vlan_tag_kfunc();
            let insns = vlan_redirect_insns(fd, filter, vlan, Some(stamp))?;
            let name = if filter.is_some() {
                "fastpath_filter"
            } else {
                "fastpath_redir"
            };
            return match XdpProgram::load_dev_bound(name, &insns, ifindex) {
                Ok(fd) => Ok(XdpProgram::loaded(fd, name, vlan.is_some())?.with_rx_timestamps()),
                Err(e @ Error::VerifierRejected { .. }) => Err(e),
                Err(e) => Err(no_rx_timestamps(format!(
                    "the driver of ifindex {ifindex} cannot bind an XDP program that reads its receive metadata: {e}"
                ))),
            };
        }
        if let Some(kfunc) = btf::rx_vlan_tag_kfunc() {
            let insns = vlan_redirect_insns(fd, filter, Some(kfunc), None)?;
            // The same names as the programs without the tag restore: the role is the same.
            let name = if filter.is_some() {
                "fastpath_filter"
            } else {
                "fastpath_redir"
            };
            match XdpProgram::load_dev_bound(name, &insns, ifindex) {
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
    pub fn redirect_filtered(xsks: &XskMap, filter: &Filter) -> Result<XdpProgram> {
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

    /// `fastpath_tx`: `XDP_TX` for every frame (with
    /// [`test_run_live`](crate::bpf::test_run_live), the traffic generator).
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

    /// `fastpath_passct`: `XDP_PASS`, counting frames from UDP source port `port` in
    /// `counter` ([`pass_counting_insns`]).
    ///
    /// # Errors
    /// As [`XdpProgram::load`].
    pub fn pass_counting(counter: &FrameCounter, port: u16) -> Result<XdpProgram> {
        let fd = counter.map.as_fd().as_raw_fd();
        XdpProgram::load("fastpath_passct", &pass_counting_insns(fd, port))
    }

    /// `fastpath_txpace`: the generator's paced `XDP_TX` program on `state`
    /// ([`tx_paced_insns`]).
    ///
    /// # Errors
    /// As [`XdpProgram::load`]; [`Error::InvalidConfig`] for 0 flows.
    pub fn tx_paced(state: &GenState, base: u16, flows: u16) -> Result<XdpProgram> {
        let fd = state.map.as_fd().as_raw_fd();
        XdpProgram::load("fastpath_txpace", &tx_paced_insns(fd, base, flows)?)
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
}
