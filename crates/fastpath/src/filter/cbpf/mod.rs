//! Classic BPF: the instruction, a checker, an interpreter and the `tcpdump -d`/`-dd`/`-ddd` text
//! forms. Sans-IO, no unsafe.
//!
//! Guarantees: [`run`] never panics and never reads outside the packet, whatever the program
//! (checked or not): a load past the captured bytes, a division by zero, a jump out of the
//! program or falling off its end returns 0 (reject), as the kernel does. [`check`] accepts a
//! program exactly when its shape is one the kernel's `bpf_check_classic` accepts, ancillary
//! loads (`SKF_AD_*`) included.
//!
//! Opcode constants keep their UAPI names (`include/uapi/linux/filter.h`, `bpf_common.h`).
//!
//! # References
//! - <https://docs.kernel.org/networking/filter.html>
//! - libpcap `bpf_image.c` (the text form) and `bpf_filter.c` (the reference interpreter)

mod text;

pub use text::{parse_decimal, CArray, Decimal, DecimalError, Listing};

// Classes (`BPF_CLASS(code)`).
/// `BPF_LD`: load into A.
pub const BPF_LD: u16 = 0x00;
/// `BPF_LDX`: load into X.
pub const BPF_LDX: u16 = 0x01;
/// `BPF_ST`: store A into scratch memory.
pub const BPF_ST: u16 = 0x02;
/// `BPF_STX`: store X into scratch memory.
pub const BPF_STX: u16 = 0x03;
/// `BPF_ALU`: arithmetic on A.
pub const BPF_ALU: u16 = 0x04;
/// `BPF_JMP`: jumps.
pub const BPF_JMP: u16 = 0x05;
/// `BPF_RET`: return.
pub const BPF_RET: u16 = 0x06;
/// `BPF_MISC`: register transfers.
pub const BPF_MISC: u16 = 0x07;

// Sizes.
/// `BPF_W`: 32 bits.
pub const BPF_W: u16 = 0x00;
/// `BPF_H`: 16 bits.
pub const BPF_H: u16 = 0x08;
/// `BPF_B`: 8 bits.
pub const BPF_B: u16 = 0x10;

// Modes.
/// `BPF_IMM`: the constant `k`.
pub const BPF_IMM: u16 = 0x00;
/// `BPF_ABS`: packet bytes at `k`.
pub const BPF_ABS: u16 = 0x20;
/// `BPF_IND`: packet bytes at `X + k`.
pub const BPF_IND: u16 = 0x40;
/// `BPF_MEM`: scratch word `M[k]`.
pub const BPF_MEM: u16 = 0x60;
/// `BPF_LEN`: the packet's length on the wire.
pub const BPF_LEN: u16 = 0x80;
/// `BPF_MSH`: `X = 4 * (pkt[k] & 0xf)` (the IPv4 header length).
pub const BPF_MSH: u16 = 0xa0;

// ALU and jump operations.
/// `BPF_ADD`.
pub const BPF_ADD: u16 = 0x00;
/// `BPF_SUB`.
pub const BPF_SUB: u16 = 0x10;
/// `BPF_MUL`.
pub const BPF_MUL: u16 = 0x20;
/// `BPF_DIV`.
pub const BPF_DIV: u16 = 0x30;
/// `BPF_OR`.
pub const BPF_OR: u16 = 0x40;
/// `BPF_AND`.
pub const BPF_AND: u16 = 0x50;
/// `BPF_LSH`.
pub const BPF_LSH: u16 = 0x60;
/// `BPF_RSH`.
pub const BPF_RSH: u16 = 0x70;
/// `BPF_NEG`.
pub const BPF_NEG: u16 = 0x80;
/// `BPF_MOD`.
pub const BPF_MOD: u16 = 0x90;
/// `BPF_XOR`.
pub const BPF_XOR: u16 = 0xa0;
/// `BPF_JA`.
pub const BPF_JA: u16 = 0x00;
/// `BPF_JEQ`.
pub const BPF_JEQ: u16 = 0x10;
/// `BPF_JGT`.
pub const BPF_JGT: u16 = 0x20;
/// `BPF_JGE`.
pub const BPF_JGE: u16 = 0x30;
/// `BPF_JSET`.
pub const BPF_JSET: u16 = 0x40;

// Operand sources.
/// `BPF_K`: the constant `k`.
pub const BPF_K: u16 = 0x00;
/// `BPF_X`: the X register.
pub const BPF_X: u16 = 0x08;
/// `BPF_A`: the A register (`BPF_RET` only).
pub const BPF_A: u16 = 0x10;

// BPF_MISC operations.
/// `BPF_TAX`: `X = A`.
pub const BPF_TAX: u16 = 0x00;
/// `BPF_TXA`: `A = X`.
pub const BPF_TXA: u16 = 0x80;

// Linux ancillary loads: `ld{,h,b} [SKF_AD_OFF + n]` reads packet metadata instead of bytes
// (`include/uapi/linux/filter.h`). The kernel ignores the load size for them.
/// `SKF_AD_OFF`: where ancillary offsets start (-0x1000 as `u32`).
pub const SKF_AD_OFF: u32 = 0xffff_f000;
/// `SKF_AD_ALU_XOR_X`: not a field: `A ^= X`.
pub const SKF_AD_ALU_XOR_X: u32 = 40;
/// `SKF_AD_VLAN_TAG`: the TCI of the VLAN tag the kernel moved out of the frame.
pub const SKF_AD_VLAN_TAG: u32 = 44;
/// `SKF_AD_VLAN_TAG_PRESENT`: 1 when the kernel moved a VLAN tag out of the frame.
pub const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;
/// `SKF_AD_RANDOM`: a random number, a new one on each load.
pub const SKF_AD_RANDOM: u32 = 56;
/// `SKF_AD_VLAN_TPID`: the TPID (0x8100, 0x88a8) of that tag.
pub const SKF_AD_VLAN_TPID: u32 = 60;
/// `SKF_AD_PKTTYPE`: the packet type (`PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_MULTICAST`,
/// `PACKET_OTHERHOST`, `PACKET_OUTGOING`).
pub const SKF_AD_PKTTYPE: u32 = 4;
/// `PACKET_HOST`: addressed to this host.
pub const PACKET_HOST: u8 = 0;
/// `PACKET_BROADCAST`: to the link-layer broadcast address.
pub const PACKET_BROADCAST: u8 = 1;
/// `PACKET_MULTICAST`: to a link-layer multicast address.
pub const PACKET_MULTICAST: u8 = 2;
/// `PACKET_OTHERHOST`: to another host (seen in promiscuous mode).
pub const PACKET_OTHERHOST: u8 = 3;
/// `PACKET_OUTGOING`: sent by this host.
pub const PACKET_OUTGOING: u8 = 4;

/// The ancillary loads the kernel knows (`bpf_anc_helper`), with the names the listing shows
/// (`vlanp` and `vlan_tci` as libpcap prints them).
const ANCILLARY: [(u32, &str); 16] = [
    (0, "proto"),
    (4, "type"),
    (8, "ifidx"),
    (12, "nla"),
    (16, "nlan"),
    (20, "mark"),
    (24, "queue"),
    (28, "hatype"),
    (32, "rxhash"),
    (36, "cpuid"),
    (SKF_AD_ALU_XOR_X, "xor_x"),
    (SKF_AD_VLAN_TAG, "vlan_tci"),
    (SKF_AD_VLAN_TAG_PRESENT, "vlanp"),
    (52, "poff"),
    (SKF_AD_RANDOM, "random"),
    (SKF_AD_VLAN_TPID, "vlan_tpid"),
];

/// The name of ancillary offset `k` (`None`: a packet offset, or unknown to the kernel).
fn ancillary(k: u32) -> Option<&'static str> {
    let n = k.checked_sub(SKF_AD_OFF)?;
    ANCILLARY
        .iter()
        .find(|&&(o, _)| o == n)
        .map(|&(_, name)| name)
}

/// Whether `code` is an absolute load into A (`ld`, `ldh`, `ldb [k]`): the only loads the
/// kernel treats `k >= SKF_AD_OFF` as ancillary for.
pub(crate) fn is_abs_load(code: u16) -> bool {
    matches!(code, 0x20 | 0x28 | 0x30)
}

/// Whether `code` reads packet bytes: `ld{,h,b} [k]`, `ld{,h,b} [x + k]`, `ldxb 4*([k]&0xf)`.
pub(crate) fn is_packet_load(code: u16) -> bool {
    matches!(code, 0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 | 0xb1)
}

/// How many bytes a load with opcode `code` reads (its `BPF_SIZE`: 4, 2 or 1).
pub(crate) fn load_size(code: u16) -> u32 {
    match code & 0x18 {
        BPF_W => 4,
        BPF_H => 2,
        _ => 1,
    }
}

/// The scratch word `i` stores to or loads from (`st`, `stx`, `ld M[k]`, `ldx M[k]`), if any.
pub(crate) fn mem_index(i: Insn) -> Option<u32> {
    let class = i.class();
    let mem = class == BPF_ST
        || class == BPF_STX
        || ((class == BPF_LD || class == BPF_LDX) && i.code & 0xe0 == BPF_MEM);
    mem.then_some(i.k)
}

/// Where control can go after instruction `i` at `pc`: the `ja` target, the `jt` then `jf`
/// targets of a conditional jump, nowhere after a return, else `pc + 1`. Not checked against
/// the program's length.
pub(crate) fn successors(i: Insn, pc: usize) -> impl Iterator<Item = usize> {
    let next = pc.saturating_add(1);
    let to = |skip: usize| next.saturating_add(skip);
    let (a, b) = match i.code {
        c if c == BPF_JMP | BPF_JA => (Some(to(i.k as usize)), None),
        c if c & 0x07 == BPF_JMP => (Some(to(usize::from(i.jt))), Some(to(usize::from(i.jf)))),
        c if c & 0x07 == BPF_RET => (None, None),
        _ => (Some(next), None),
    };
    a.into_iter().chain(b)
}

/// A VLAN tag the kernel moved out of the frame into the packet's metadata (what the
/// ancillary loads `vlanp`, `vlan_tci` and `vlan_tpid` read; see [`run_with_vlan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// Tag protocol identifier: 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub tpid: u16,
    /// Tag control information: priority (3 bits), DEI (1), VLAN id (12).
    pub tci: u16,
}

/// Scratch words (`BPF_MEMWORDS`).
pub const BPF_MEMWORDS: u32 = 16;
/// Most instructions the kernel accepts (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

// One classic BPF instruction: the kernel's `struct sock_filter`, mirrored in `sys/packet.rs`
// (the bottom layer attaches programs as they are); its constructors are here.
pub use crate::sys::packet::sock_filter as Insn;

impl Insn {
    /// A non-jump instruction.
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A jump instruction.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// `ret #k`.
    pub const fn ret(k: u32) -> Insn {
        Insn::stmt(BPF_RET | BPF_K, k)
    }

    fn class(self) -> u16 {
        self.code & 0x07
    }
}

/// Why [`check`] refused a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No instruction, or more than [`BPF_MAXINSNS`].
    #[error("a program has 1 to {BPF_MAXINSNS} instructions, this one has {0}")]
    Length(usize),
    /// An opcode the kernel does not know.
    #[error("instruction {at}: unknown opcode {code:#06x}")]
    Opcode {
        /// Index of the instruction.
        at: usize,
        /// Its opcode.
        code: u16,
    },
    /// A jump past the last instruction.
    #[error("instruction {at}: jump past the end of the program")]
    Jump {
        /// Index of the instruction.
        at: usize,
    },
    /// A scratch memory index of 16 or more.
    #[error("instruction {at}: scratch memory index {k} out of range (0 to 15)")]
    Memory {
        /// Index of the instruction.
        at: usize,
        /// The index.
        k: u32,
    },
    /// A division or modulo by the constant 0.
    #[error("instruction {at}: division by zero")]
    DivByZero {
        /// Index of the instruction.
        at: usize,
    },
    /// A shift by a constant of 32 or more.
    #[error("instruction {at}: shift by {k} (must be below 32)")]
    Shift {
        /// Index of the instruction.
        at: usize,
        /// The shift amount.
        k: u32,
    },
    /// A load at an ancillary offset the kernel does not know.
    #[error("instruction {at}: unknown ancillary load at SKF_AD_OFF + {n}")]
    Ancillary {
        /// Index of the instruction.
        at: usize,
        /// The offset past `SKF_AD_OFF`.
        n: u32,
    },
    /// The last instruction is not a return.
    #[error("the last instruction must be a return (ret)")]
    NoReturn,
    /// A load from a scratch word that some path reaches without storing to it first.
    #[error("instruction {at}: reads scratch memory M[{k}] before any store to it")]
    Uninitialized {
        /// Index of the instruction.
        at: usize,
        /// The scratch word.
        k: u32,
    },
}

fn known(code: u16) -> bool {
    matches!(
        code,
        // ld
        0x00 | 0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 | 0x60 | 0x80
        // ldx
        | 0x01 | 0x61 | 0x81 | 0xb1
        // st, stx
        | 0x02 | 0x03
        // alu
        | 0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x44 | 0x4c | 0x54 | 0x5c
        | 0x64 | 0x6c | 0x74 | 0x7c | 0x84 | 0x94 | 0x9c | 0xa4 | 0xac
        // jmp
        | 0x05 | 0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d
        // ret
        | 0x06 | 0x16
        // misc
        | 0x07 | 0x87
    )
}

/// Checks `prog` the way the kernel's `bpf_check_classic` does: length, known opcodes, jumps
/// inside the program, scratch indices, no constant division by zero, ancillary loads the
/// kernel knows, a return at the end, no scratch word read before a store to it.
///
/// # Errors
/// The first [`CheckError`] found.
pub fn check(prog: &[Insn]) -> Result<(), CheckError> {
    let n = prog.len();
    if n == 0 || n > BPF_MAXINSNS {
        return Err(CheckError::Length(n));
    }
    for (at, i) in prog.iter().enumerate() {
        if !known(i.code) {
            return Err(CheckError::Opcode { at, code: i.code });
        }
        let rest = (n - at - 1) as u64;
        let class = i.class();
        let op = i.code & 0xf0;
        if class == BPF_JMP && op == BPF_JA && u64::from(i.k) >= rest {
            return Err(CheckError::Jump { at });
        }
        if class == BPF_JMP && op != BPF_JA && (u64::from(i.jt) >= rest || u64::from(i.jf) >= rest)
        {
            return Err(CheckError::Jump { at });
        }
        if class == BPF_ALU && i.code & BPF_X == 0 {
            if (op == BPF_DIV || op == BPF_MOD) && i.k == 0 {
                return Err(CheckError::DivByZero { at });
            }
            if (op == BPF_LSH || op == BPF_RSH) && i.k >= 32 {
                return Err(CheckError::Shift { at, k: i.k });
            }
        }
        if mem_index(*i).is_some_and(|k| k >= BPF_MEMWORDS) {
            return Err(CheckError::Memory { at, k: i.k });
        }
        if is_abs_load(i.code) && i.k >= SKF_AD_OFF && ancillary(i.k).is_none() {
            return Err(CheckError::Ancillary {
                at,
                n: i.k - SKF_AD_OFF,
            });
        }
    }
    if prog[n - 1].class() != BPF_RET {
        return Err(CheckError::NoReturn);
    }
    check_loads_after_stores(prog)
}

/// The kernel's `check_load_and_stores`: every `ld M[k]`/`ldx M[k]` comes after a store to
/// `M[k]` on every path. One forward pass (jumps go forward), keeping the words surely stored.
fn check_loads_after_stores(prog: &[Insn]) -> Result<(), CheckError> {
    // Words stored on every path into each instruction (`None`: unreachable so far).
    let mut stored: Vec<Option<u16>> = vec![None; prog.len()];
    stored[0] = Some(0);
    for (pc, &i) in prog.iter().enumerate() {
        let Some(mut m) = stored[pc] else { continue };
        let class = i.class();
        let k = i.k;
        if (class == BPF_LD || class == BPF_LDX) && i.code & 0xe0 == BPF_MEM {
            if k >= BPF_MEMWORDS || m & (1 << k) == 0 {
                return Err(CheckError::Uninitialized { at: pc, k });
            }
        } else if (class == BPF_ST || class == BPF_STX) && k < BPF_MEMWORDS {
            m |= 1 << k;
        }
        for to in successors(i, pc) {
            if let Some(s) = stored.get_mut(to) {
                *s = Some(s.map_or(m, |old| old & m));
            }
        }
    }
    Ok(())
}

/// Reads the [`load_size`] bytes of a load with opcode `code` big-endian at `off`, `None` when
/// they are not all inside `pkt`.
#[inline]
fn load(pkt: &[u8], off: u64, code: u16) -> Option<u32> {
    let len = load_size(code) as usize;
    let start = usize::try_from(off).ok()?;
    let b = pkt.get(start..start.checked_add(len)?)?;
    Some(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
}

/// What the kernel keeps of a packet beside its bytes, as the ancillary loads read it (see
/// [`run_with_meta`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// A VLAN tag the kernel moved out of the frame (`vlanp`, `vlan_tci`, `vlan_tpid`).
    pub vlan: Option<VlanTag>,
    /// The packet type (`type`: [`PACKET_HOST`], ..., [`PACKET_OUTGOING`]); `None`: a received
    /// frame, whose type its destination address tells (see [`run`]).
    pub pkttype: Option<u8>,
}

impl Meta {
    /// With `vlan` as the tag in metadata.
    pub fn with_vlan(mut self, vlan: Option<VlanTag>) -> Meta {
        self.vlan = vlan;
        self
    }

    /// With `pkttype` as the packet type.
    pub fn with_pkttype(mut self, pkttype: u8) -> Meta {
        self.pkttype = Some(pkttype);
        self
    }
}

/// Runs `prog` over `pkt` (the captured bytes) of a packet `wirelen` bytes long on the wire,
/// and returns its verdict: 0 rejects, anything else accepts that many bytes.
///
/// Never panics. Out-of-bounds loads, division by zero, jumps out of the program and running
/// off its end return 0, as in the kernel. Shifts by X use the low 5 bits of X (the kernel's
/// eBPF semantics). The frame is taken to be one this host received, with its VLAN tags in
/// its bytes: the ancillary VLAN loads read 0 (no tag in metadata), the packet type (`type`)
/// is `PACKET_BROADCAST` or `PACKET_MULTICAST` by the destination address, else
/// `PACKET_HOST` (never `PACKET_OUTGOING`: so `inbound` matches every packet and `outbound`
/// none; the interface's own address being unknown here, `PACKET_OTHERHOST` is not told
/// apart); other ancillary loads reject the packet (that metadata exists only in the kernel).
pub fn run(prog: &[Insn], pkt: &[u8], wirelen: u32) -> u32 {
    run_with_meta(prog, pkt, wirelen, Meta::default())
}

/// [`run`] as the kernel runs a socket filter over a packet whose outer VLAN tag it moved out
/// of the frame (`pkt` and `wirelen` then exclude the tag's 4 bytes): the ancillary loads
/// `vlanp`, `vlan_tci` and `vlan_tpid` read `vlan`.
pub fn run_with_vlan(prog: &[Insn], pkt: &[u8], wirelen: u32, vlan: Option<VlanTag>) -> u32 {
    run_with_meta(prog, pkt, wirelen, Meta::default().with_vlan(vlan))
}

/// [`run`] with the packet's metadata as `meta` says: as the kernel runs a socket filter.
pub fn run_with_meta(prog: &[Insn], pkt: &[u8], wirelen: u32, meta: Meta) -> u32 {
    exec(prog, pkt, wirelen, meta, |_, _| {})
}

/// The packet type of a received frame by its destination address (the kernel's
/// `eth_type_trans`, the interface's own address aside).
#[inline]
pub(crate) fn received_pkttype(pkt: &[u8]) -> u8 {
    match pkt.get(..6) {
        Some([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) => PACKET_BROADCAST,
        Some(d) if d[0] & 1 != 0 => PACKET_MULTICAST,
        _ => PACKET_HOST,
    }
}

/// [`run_with_vlan`], calling `on_load(code, offset)` before each load from the packet or its
/// metadata, `offset` being where it reads (`x + k` without wrapping for `[x + k]`).
#[cfg(test)]
pub(crate) fn run_traced(
    prog: &[Insn],
    pkt: &[u8],
    wirelen: u32,
    vlan: Option<VlanTag>,
    on_load: impl FnMut(u16, u64),
) -> u32 {
    exec(prog, pkt, wirelen, Meta::default().with_vlan(vlan), on_load)
}

#[inline]
fn exec(
    prog: &[Insn],
    pkt: &[u8],
    wirelen: u32,
    meta: Meta,
    mut on_load: impl FnMut(u16, u64),
) -> u32 {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; BPF_MEMWORDS as usize];
    let mut pc: usize = 0;
    // Every instruction moves pc forward by at least one, so this terminates.
    while let Some(&i) = prog.get(pc) {
        pc += 1;
        if is_packet_load(i.code) {
            let x = if i.code & 0xe0 == BPF_IND { x } else { 0 };
            on_load(i.code, u64::from(x) + u64::from(i.k));
        }
        match i.code {
            // BPF_LD
            0x20 | 0x28 | 0x30 if i.k >= SKF_AD_OFF => {
                match ancillary_load(i.k - SKF_AD_OFF, meta, pkt) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            0x20 | 0x28 | 0x30 => match load(pkt, u64::from(i.k), i.code) {
                Some(v) => a = v,
                None => return 0,
            },
            0x40 | 0x48 | 0x50 => match load(pkt, u64::from(x) + u64::from(i.k), i.code) {
                Some(v) => a = v,
                None => return 0,
            },
            0x00 => a = i.k,
            0x60 => a = mem.get(i.k as usize).copied().unwrap_or(0),
            0x80 => a = wirelen,
            // BPF_LDX
            0x01 => x = i.k,
            0x61 => x = mem.get(i.k as usize).copied().unwrap_or(0),
            0x81 => x = wirelen,
            0xb1 => match load(pkt, u64::from(i.k), i.code) {
                Some(v) => x = (v & 0xf) << 2,
                None => return 0,
            },
            // BPF_ST, BPF_STX
            0x02 => {
                if let Some(m) = mem.get_mut(i.k as usize) {
                    *m = a;
                }
            }
            0x03 => {
                if let Some(m) = mem.get_mut(i.k as usize) {
                    *m = x;
                }
            }
            // BPF_ALU
            c if c & 0x07 == BPF_ALU => {
                let v = if c & BPF_X != 0 { x } else { i.k };
                match alu(c, a, v) {
                    Some(r) => a = r,
                    None => return 0,
                }
            }
            // BPF_JMP
            0x05 => pc = pc.saturating_add(i.k as usize),
            c if c & 0x07 == BPF_JMP => {
                let v = if c & BPF_X != 0 { x } else { i.k };
                let taken = match jump_taken(c, a, v) {
                    Some(t) => t,
                    None => return 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            // BPF_RET
            0x06 => return i.k,
            0x16 => return a,
            // BPF_MISC
            0x07 => x = a,
            0x87 => a = x,
            _ => return 0,
        }
    }
    0
}

/// The ancillary load at `SKF_AD_OFF + n`: the VLAN fields and the packet type read `meta`
/// (a received frame's type when it has none); `None` (reject the packet) for metadata that
/// exists only in the kernel.
#[inline]
fn ancillary_load(n: u32, meta: Meta, pkt: &[u8]) -> Option<u32> {
    let vlan = meta.vlan;
    match n {
        SKF_AD_PKTTYPE => Some(u32::from(
            meta.pkttype.unwrap_or_else(|| received_pkttype(pkt)),
        )),
        SKF_AD_VLAN_TAG_PRESENT => Some(u32::from(vlan.is_some())),
        SKF_AD_VLAN_TAG => Some(vlan.map_or(0, |v| u32::from(v.tci))),
        SKF_AD_VLAN_TPID => Some(vlan.map_or(0, |v| u32::from(v.tpid))),
        _ => None,
    }
}

/// `a <op> v` for the `BPF_ALU` opcode `code`; `None` (reject the packet) for a division or
/// modulo by zero and an unknown operation.
#[inline]
fn alu(code: u16, a: u32, v: u32) -> Option<u32> {
    Some(match code & 0xf0 {
        BPF_ADD => a.wrapping_add(v),
        BPF_SUB => a.wrapping_sub(v),
        BPF_MUL => a.wrapping_mul(v),
        BPF_DIV => a.checked_div(v)?,
        BPF_MOD => a.checked_rem(v)?,
        BPF_OR => a | v,
        BPF_AND => a & v,
        BPF_XOR => a ^ v,
        BPF_LSH => a.wrapping_shl(v),
        BPF_RSH => a.wrapping_shr(v),
        BPF_NEG => a.wrapping_neg(),
        _ => return None,
    })
}

/// Whether the conditional `BPF_JMP` with opcode `code` is taken for `a` and operand `v`;
/// `None` (reject the packet) for an unknown comparison.
#[inline]
fn jump_taken(code: u16, a: u32, v: u32) -> Option<bool> {
    Some(match code & 0xf0 {
        BPF_JEQ => a == v,
        BPF_JGT => a > v,
        BPF_JGE => a >= v,
        BPF_JSET => a & v != 0,
        _ => return None,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    // `tcpdump -ddd 'udp port 53'` (libpcap 1.10.3).
    const UDP53: &str =
        "20\n40 0 0 12\n21 0 6 34525\n48 0 0 20\n21 0 15 17\n40 0 0 54\n21 12 0 53\n\
        40 0 0 56\n21 10 11 53\n21 0 10 2048\n48 0 0 23\n21 0 8 17\n40 0 0 20\n69 6 0 8191\n\
        177 0 0 14\n72 0 0 14\n21 2 0 53\n72 0 0 16\n21 0 1 53\n6 0 0 262144\n6 0 0 0\n";

    fn udp4(dport: u16, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 42];
        p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        p[14] = 0x45;
        p[20..22].copy_from_slice(&frag.to_be_bytes());
        p[23] = 17;
        p[36..38].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn decimal_round_trip_and_run() {
        let prog = parse_decimal(UDP53).unwrap();
        assert_eq!(prog.len(), 20);
        check(&prog).unwrap();
        assert_eq!(Decimal(&prog).to_string(), UDP53);
        assert_eq!(run(&prog, &udp4(53, 0), 42), 262_144);
        assert_eq!(run(&prog, &udp4(54, 0), 42), 0);
        // A non-first fragment carries no port.
        assert_eq!(run(&prog, &udp4(53, 0x0010), 42), 0);
        // Truncated before the port: the load fails, the packet is rejected.
        assert_eq!(run(&prog, &udp4(53, 0)[..36], 42), 0);
    }

    #[test]
    fn listing_matches_tcpdump() {
        let prog = parse_decimal(UDP53).unwrap();
        let text = Listing(&prog).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "(000) ldh      [12]");
        assert_eq!(lines[1], "(001) jeq      #0x86dd          jt 2\tjf 8");
        assert_eq!(lines[13], "(013) ldxb     4*([14]&0xf)");
        assert_eq!(lines[14], "(014) ldh      [x + 14]");
        assert_eq!(lines[19], "(019) ret      #0");
    }

    /// The kernel-interface layer builds its one-instruction program without the compiler:
    /// it must be the compiler's `ret #k`.
    #[test]
    fn snaplen_filter_is_ret_k() {
        assert_eq!(crate::sys::packet::snaplen_filter(96), [Insn::ret(96)]);
    }

    #[test]
    fn comma_form_and_errors() {
        let p = parse_decimal("4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0").unwrap();
        assert_eq!(p.len(), 4);
        assert!(parse_decimal("").is_err());
        assert!(parse_decimal("2\n6 0 0 0\n")
            .unwrap_err()
            .why
            .contains("count says 2"));
        assert_eq!(parse_decimal("1\n6 0 0\n").unwrap_err().line, 2);
        assert!(parse_decimal("1\n6 0 256 0\n").is_err());
    }

    #[test]
    fn checker_refuses_bad_programs() {
        assert_eq!(check(&[]), Err(CheckError::Length(0)));
        assert_eq!(check(&[Insn::stmt(0x20, 0)]), Err(CheckError::NoReturn));
        assert_eq!(
            check(&[Insn::jump(0x15, 0, 1, 0), Insn::ret(0)]),
            Err(CheckError::Jump { at: 0 })
        );
        assert_eq!(
            check(&[Insn::stmt(0x34, 0), Insn::ret(0)]),
            Err(CheckError::DivByZero { at: 0 })
        );
        assert_eq!(
            check(&[Insn::stmt(0x02, 16), Insn::ret(0)]),
            Err(CheckError::Memory { at: 0, k: 16 })
        );
        assert_eq!(
            check(&[Insn::stmt(0xff, 0), Insn::ret(0)]),
            Err(CheckError::Opcode { at: 0, code: 0xff })
        );
        // A scratch word read before any store, on some path (the kernel refuses it too).
        assert_eq!(
            check(&[Insn::stmt(0x60, 3), Insn::stmt(0x16, 0)]),
            Err(CheckError::Uninitialized { at: 0, k: 3 })
        );
        let one_path = [
            Insn::stmt(0x20, 0),
            Insn::jump(0x15, 1, 0, 1),
            Insn::stmt(0x02, 2),
            Insn::stmt(0x61, 2),
            Insn::stmt(0x16, 0),
        ];
        assert_eq!(
            check(&one_path),
            Err(CheckError::Uninitialized { at: 3, k: 2 })
        );
        let both_paths = [
            Insn::stmt(0x02, 2),
            Insn::jump(0x15, 1, 0, 1),
            Insn::stmt(0x02, 2),
            Insn::stmt(0x61, 2),
            Insn::stmt(0x16, 0),
        ];
        assert_eq!(check(&both_paths), Ok(()));
    }

    #[test]
    fn interpreter_survives_garbage() {
        // Unchecked programs: jumps out, division by X = 0, memory out of range.
        let progs: [&[Insn]; 4] = [
            &[Insn::stmt(0x05, u32::MAX)],
            &[Insn::stmt(0x3c, 0), Insn::ret(1)],
            &[
                Insn::stmt(0x60, 99),
                Insn::stmt(0x02, 99),
                Insn::stmt(0x16, 0),
            ],
            &[Insn::stmt(0x40, u32::MAX), Insn::ret(1)],
        ];
        for p in progs {
            assert_eq!(run(p, &[1, 2, 3], 3), 0);
        }
    }
}
