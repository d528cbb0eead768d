//! Classic BPF to eBPF, for running a filter inside an XDP program. Sans-IO.
//!
//! Register map: A is `w7`, X is `w8`, the XDP context is kept in `r6`, the frame length in
//! `w9`; the 16 scratch words live at `r10 - 64 .. r10`, and packet loads go through an 8-byte
//! buffer at `r10 - 72`.
//!
//! Packet bytes are read with the `bpf_xdp_load_bytes` helper (id 189, Linux 5.18+): it checks
//! the bounds itself (a failed load rejects the packet, as in classic BPF), works for any
//! offset, including `X + k` offsets the verifier could not bound, and for multi-buffer frames.
//! `len` is `bpf_xdp_get_buff_len` (id 188). Classic programs only jump forward, so the result
//! has no loops; division by a zero X rejects, as in the kernel's classic BPF.

use super::cbpf::{self, Insn as CInsn};
use crate::bpf::insn::{AluOp, Insn, JmpOp, Label, Program, Reg, Size, Src};

/// `BPF_FUNC_xdp_get_buff_len`.
pub(crate) const BPF_FUNC_XDP_GET_BUFF_LEN: i32 = 188;
/// `BPF_FUNC_xdp_load_bytes`.
pub(crate) const BPF_FUNC_XDP_LOAD_BYTES: i32 = 189;

const A: Reg = Reg::R7;
const X: Reg = Reg::R8;
const CTX: Reg = Reg::R6;
const LEN: Reg = Reg::R9;
const MEM: i16 = -64;
const BUF: i16 = -72;

fn mem_off(k: u32) -> i16 {
    MEM + 4 * (k.min(15) as i16)
}

/// Loads the packet bytes of load `code` ([`cbpf::load_size`]) at the offset in `r2` into `dst`
/// (host order), rejecting when the helper fails.
fn load_r2(p: &mut Program, dst: Reg, code: u16, reject: Label) {
    let n = cbpf::load_size(code) as i32;
    let sz = match n {
        4 => Size::W,
        2 => Size::H,
        _ => Size::B,
    };
    p.push(Insn::mov64_reg(Reg::R1, CTX));
    p.push(Insn::mov64_reg(Reg::R3, Reg::R10));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R3, i32::from(BUF)));
    p.push(Insn::mov64_imm(Reg::R4, n));
    p.push(Insn::call(BPF_FUNC_XDP_LOAD_BYTES));
    p.jump_if(JmpOp::Ne, Reg::R0, Src::Imm(0), reject);
    p.push(Insn::ldx_mem(sz, dst, Reg::R10, BUF));
    if n > 1 {
        p.push(Insn::to_be(dst, n * 8));
    }
}

/// Whether the `ld{,h,b} [k]` reads a VLAN ancillary field: in XDP the tags are in the frame,
/// so these read 0, as in [`cbpf::run`]. (The packet type reads as in [`cbpf::run`] too: XDP
/// sees received frames only.)
fn vlan_ancillary(k: u32) -> bool {
    matches!(
        k.wrapping_sub(cbpf::SKF_AD_OFF),
        cbpf::SKF_AD_VLAN_TAG | cbpf::SKF_AD_VLAN_TAG_PRESENT | cbpf::SKF_AD_VLAN_TPID
    ) && k >= cbpf::SKF_AD_OFF
}

/// Whether the `ld{,h,b} [k]` reads the packet type.
fn pkttype_ancillary(k: u32) -> bool {
    k == cbpf::SKF_AD_OFF + cbpf::SKF_AD_PKTTYPE
}

/// Whether the translation of `i` has a path to `reject` of its own (failed packet load,
/// division by a zero X, an operation eBPF lacks).
fn may_fail(i: CInsn) -> bool {
    match i.code {
        c if cbpf::is_abs_load(c) && (vlan_ancillary(i.k) || pkttype_ancillary(i.k)) => false,
        c if cbpf::is_packet_load(c) => true,
        c if c & 0x07 == cbpf::BPF_ALU => {
            alu(c).is_none()
                || (c & cbpf::BPF_X != 0 && matches!(c & 0xf0, cbpf::BPF_DIV | cbpf::BPF_MOD))
        }
        _ => false,
    }
}

fn alu(code: u16) -> Option<AluOp> {
    Some(match code & 0xf0 {
        cbpf::BPF_ADD => AluOp::Add,
        cbpf::BPF_SUB => AluOp::Sub,
        cbpf::BPF_MUL => AluOp::Mul,
        cbpf::BPF_DIV => AluOp::Div,
        cbpf::BPF_MOD => AluOp::Mod,
        cbpf::BPF_OR => AluOp::Or,
        cbpf::BPF_AND => AluOp::And,
        cbpf::BPF_XOR => AluOp::Xor,
        cbpf::BPF_LSH => AluOp::Lsh,
        cbpf::BPF_RSH => AluOp::Rsh,
        cbpf::BPF_NEG => AluOp::Neg,
        _ => return None,
    })
}

/// Which exits of a translated program some path reaches. The verifier refuses unreachable
/// code: emit the code behind an exit only if it is used.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Exits {
    /// Some path jumps to `accept`.
    pub(crate) accept: bool,
    /// Some path jumps to `reject`.
    pub(crate) reject: bool,
}

/// Appends `prog` (which must pass [`cbpf::check`]) to `p`, entered with the XDP context in
/// `r1`. It jumps to `accept` when the classic program would return non-zero and to `reject`
/// otherwise; both labels are the caller's to bind, where [`Exits`] says they are used.
/// Clobbers r0–r9 and 72 bytes of stack.
pub(crate) fn translate(prog: &[CInsn], p: &mut Program, accept: Label, reject: Label) -> Exits {
    let mut exits = Exits::default();
    prologue(p);
    let targets = Targets {
        labels: (0..prog.len()).map(|_| p.label()).collect(),
        accept,
        reject,
    };
    // The verifier refuses unreachable code, which classic programs may contain.
    let live = reachable(prog);
    for (pc, i) in prog.iter().enumerate() {
        p.bind(targets.labels[pc]);
        if !live[pc] {
            continue;
        }
        if may_fail(*i) {
            exits.reject = true;
        }
        emit(p, *i, pc, &targets, &mut exits);
    }
    // A checked program ends in a return, so nothing runs off the end (and a guard jump here
    // would be unreachable code, which the verifier refuses).
    exits
}

/// Saves the context, reads the frame length, zeroes A, X and the scratch words.
fn prologue(p: &mut Program) {
    p.push(Insn::mov64_reg(CTX, Reg::R1));
    p.push(Insn::call(BPF_FUNC_XDP_GET_BUFF_LEN));
    p.push(Insn::mov32_reg(LEN, Reg::R0));
    p.push(Insn::mov32_imm(A, 0));
    p.push(Insn::mov32_imm(X, 0));
    for off in (MEM..0).step_by(8) {
        p.push(Insn::st_mem(Size::DW, Reg::R10, off, 0));
    }
}

/// Which instructions of `prog` some path from the first one reaches.
fn reachable(prog: &[CInsn]) -> Vec<bool> {
    let mut live = vec![false; prog.len()];
    if let Some(first) = live.first_mut() {
        *first = true;
    }
    for pc in 0..prog.len() {
        if !live[pc] {
            continue;
        }
        for to in cbpf::successors(prog[pc], pc) {
            if let Some(l) = live.get_mut(to) {
                *l = true;
            }
        }
    }
    live
}

/// Where the translation of one program jumps: a label per classic instruction, and the exits.
struct Targets {
    labels: Vec<Label>,
    accept: Label,
    reject: Label,
}

impl Targets {
    /// A jump target; a checked program never jumps past its end, and if it did, reject.
    fn at(&self, pc: usize) -> Label {
        self.labels.get(pc).copied().unwrap_or(self.reject)
    }
}

/// The eBPF for classic instruction `i` at `pc`, noting in `exits` which exits it jumps to
/// (beyond what [`may_fail`] already noted).
fn emit(p: &mut Program, i: CInsn, pc: usize, t: &Targets, exits: &mut Exits) {
    let k = i.k;
    let kimm = k as i32;
    match i.code {
        0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 | 0xb1 => {
            emit_load(p, i, t.reject);
        }
        0x00 => {
            p.push(Insn::mov32_imm(A, kimm));
        }
        0x01 => {
            p.push(Insn::mov32_imm(X, kimm));
        }
        0x60 => {
            p.push(Insn::ldx_mem(Size::W, A, Reg::R10, mem_off(k)));
        }
        0x61 => {
            p.push(Insn::ldx_mem(Size::W, X, Reg::R10, mem_off(k)));
        }
        0x80 => {
            p.push(Insn::mov32_reg(A, LEN));
        }
        0x81 => {
            p.push(Insn::mov32_reg(X, LEN));
        }
        0x02 => {
            p.push(Insn::stx_mem(Size::W, Reg::R10, A, mem_off(k)));
        }
        0x03 => {
            p.push(Insn::stx_mem(Size::W, Reg::R10, X, mem_off(k)));
        }
        0x07 => {
            p.push(Insn::mov32_reg(X, A));
        }
        0x87 => {
            p.push(Insn::mov32_reg(A, X));
        }
        0x06 => {
            if k != 0 {
                exits.accept = true;
                p.jump_to(t.accept);
            } else {
                exits.reject = true;
                p.jump_to(t.reject);
            }
        }
        0x16 => {
            (exits.accept, exits.reject) = (true, true);
            p.jump32_if(JmpOp::Ne, A, Src::Imm(0), t.accept);
            p.jump_to(t.reject);
        }
        0x05 => {
            exits.reject |= t.labels.get(pc + 1 + k as usize).is_none();
            p.jump_to(t.at(pc + 1 + k as usize));
        }
        c if c & 0x07 == cbpf::BPF_ALU => emit_alu(p, c, kimm, t.reject),
        c if c & 0x07 == cbpf::BPF_JMP => emit_cond_jump(p, i, pc, t, exits),
        _ => {
            p.jump_to(t.reject);
        }
    }
}

/// A packet load: `ld{,h,b} [k]`, `ld{,h,b} [x + k]` or `ldxb 4*([k]&0xf)`.
fn emit_load(p: &mut Program, i: CInsn, reject: Label) {
    let k = i.k;
    let kimm = k as i32;
    match i.code {
        // ld/ldh/ldb [k]: the VLAN ancillary fields read 0 (tags are in the frame); the
        // other ancillary offsets have no meaning here: reject like the interpreter does.
        0x20 | 0x28 | 0x30 => {
            if vlan_ancillary(k) {
                p.push(Insn::mov32_imm(A, 0));
            } else if pkttype_ancillary(k) {
                emit_pkttype(p);
            } else if k >= cbpf::SKF_AD_OFF {
                p.jump_to(reject);
            } else {
                p.push(Insn::mov32_imm(Reg::R2, kimm));
                load_r2(p, A, i.code, reject);
            }
        }
        // ld/ldh/ldb [x + k]
        0x40 | 0x48 | 0x50 => {
            if k > 0x7fff_ffff {
                p.jump_to(reject);
            } else {
                p.push(Insn::mov32_reg(Reg::R2, X));
                p.push(Insn::alu64_imm(AluOp::Add, Reg::R2, kimm));
                p.jump_if(JmpOp::Gt, Reg::R2, Src::Imm(0x7fff_ffff), reject);
                load_r2(p, A, i.code, reject);
            }
        }
        // ldxb 4*([k]&0xf)
        _ => {
            if k >= cbpf::SKF_AD_OFF {
                p.jump_to(reject);
            } else {
                p.push(Insn::mov32_imm(Reg::R2, kimm));
                load_r2(p, X, i.code, reject);
                p.push(Insn::alu32_imm(AluOp::And, X, 0xf));
                p.push(Insn::alu32_imm(AluOp::Lsh, X, 2));
            }
        }
    }
}

/// `A = the packet type` of the frame XDP received, as [`cbpf::run`] has it: broadcast or
/// multicast by the destination address, else host (never outgoing: XDP sees only received
/// frames). A frame too short for an address is a host one.
fn emit_pkttype(p: &mut Program) {
    let (host, not_bcast, mcast, done) = (p.label(), p.label(), p.label(), p.label());
    p.jump32_if(JmpOp::Lt, LEN, Src::Imm(6), host);
    p.push(Insn::mov64_imm(Reg::R2, 0));
    load_r2(p, A, cbpf::BPF_LD | cbpf::BPF_W | cbpf::BPF_ABS, host);
    p.jump32_if(JmpOp::Ne, A, Src::Imm(-1), not_bcast);
    p.push(Insn::mov64_imm(Reg::R2, 4));
    load_r2(p, A, cbpf::BPF_LD | cbpf::BPF_H | cbpf::BPF_ABS, host);
    // The first byte was 0xff: multicast unless the rest is all ones too.
    p.jump32_if(JmpOp::Ne, A, Src::Imm(0xffff), mcast);
    p.push(Insn::mov32_imm(A, i32::from(cbpf::PACKET_BROADCAST)));
    p.jump_to(done);
    p.bind(not_bcast);
    p.push(Insn::alu32_imm(AluOp::Rsh, A, 24));
    p.push(Insn::alu32_imm(AluOp::And, A, 1));
    p.jump32_if(JmpOp::Eq, A, Src::Imm(0), host);
    p.bind(mcast);
    p.push(Insn::mov32_imm(A, i32::from(cbpf::PACKET_MULTICAST)));
    p.jump_to(done);
    p.bind(host);
    p.push(Insn::mov32_imm(A, i32::from(cbpf::PACKET_HOST)));
    p.bind(done);
}

/// A `BPF_ALU` instruction with opcode `c` (32-bit, on A); division by a zero X rejects.
fn emit_alu(p: &mut Program, c: u16, kimm: i32, reject: Label) {
    match alu(c) {
        Some(op) if c & cbpf::BPF_X != 0 => {
            if matches!(op, AluOp::Div | AluOp::Mod) {
                p.jump32_if(JmpOp::Eq, X, Src::Imm(0), reject);
            }
            p.push(Insn::alu32_reg(op, A, X));
        }
        Some(op) => {
            p.push(Insn::alu32_imm(op, A, kimm));
        }
        None => {
            p.jump_to(reject);
        }
    }
}

/// A conditional `BPF_JMP` (`jeq`, `jgt`, `jge`, `jset`) at `pc`: a 32-bit compare of A.
fn emit_cond_jump(p: &mut Program, i: CInsn, pc: usize, t: &Targets, exits: &mut Exits) {
    let c = i.code;
    let op = match c & 0xf0 {
        cbpf::BPF_JEQ => JmpOp::Eq,
        cbpf::BPF_JGT => JmpOp::Gt,
        cbpf::BPF_JGE => JmpOp::Ge,
        cbpf::BPF_JSET => JmpOp::Set,
        _ => {
            exits.reject = true;
            p.jump_to(t.reject);
            return;
        }
    };
    exits.reject |= t.labels.get(pc + 1 + usize::from(i.jt.max(i.jf))).is_none();
    let src = if c & cbpf::BPF_X != 0 {
        Src::Reg(X)
    } else {
        Src::Imm(i.k as i32)
    };
    p.jump32_if(op, A, src, t.at(pc + 1 + usize::from(i.jt)));
    if i.jf != 0 {
        p.jump_to(t.at(pc + 1 + usize::from(i.jf)));
    }
}
