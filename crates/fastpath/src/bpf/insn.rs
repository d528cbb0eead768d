//! eBPF instruction encoding and a small assembler with labels. Sans-IO: no syscalls here.
//!
//! Guarantees: every [`Insn`] constructor produces exactly the 8-byte encoding the kernel reads
//! as `struct bpf_insn` on this host (little-endian: destination register in the low nibble of
//! [`Insn::regs`]). [`Program::finish`] either returns a program whose every jump offset lands on
//! a bound label, or an [`AsmError`]; it never panics.
//!
//! Opcode constants keep their UAPI names (`include/uapi/linux/bpf.h`, `bpf_common.h`) so they
//! can be grepped against the headers.
//!
//! # References
//! - <https://docs.kernel.org/bpf/standardization/instruction-set.html>

use std::fmt;

// Instruction classes (`BPF_CLASS(code)`, low 3 bits).
/// `BPF_LD`: non-standard load (only the 16-byte `BPF_LD | BPF_DW | BPF_IMM` is used).
pub const BPF_LD: u8 = 0x00;
/// `BPF_LDX`: load into a register from memory.
pub const BPF_LDX: u8 = 0x01;
/// `BPF_ST`: store an immediate to memory.
pub const BPF_ST: u8 = 0x02;
/// `BPF_STX`: store a register to memory.
pub const BPF_STX: u8 = 0x03;
/// `BPF_ALU`: 32-bit arithmetic.
pub const BPF_ALU: u8 = 0x04;
/// `BPF_JMP`: 64-bit compare jumps, call, exit.
pub const BPF_JMP: u8 = 0x05;
/// `BPF_JMP32`: 32-bit compare jumps.
pub const BPF_JMP32: u8 = 0x06;
/// `BPF_ALU64`: 64-bit arithmetic.
pub const BPF_ALU64: u8 = 0x07;

// Memory access sizes (`BPF_SIZE(code)`).
/// `BPF_W`: 32-bit word.
pub const BPF_W: u8 = 0x00;
/// `BPF_H`: 16-bit half word.
pub const BPF_H: u8 = 0x08;
/// `BPF_B`: byte.
pub const BPF_B: u8 = 0x10;
/// `BPF_DW`: 64-bit double word.
pub const BPF_DW: u8 = 0x18;

// Memory access modes (`BPF_MODE(code)`).
/// `BPF_IMM`: immediate (64-bit load across two slots).
pub const BPF_IMM: u8 = 0x00;
/// `BPF_MEM`: `*(size *)(reg + off)`.
pub const BPF_MEM: u8 = 0x60;

// Operand source (`BPF_SRC(code)`).
/// `BPF_K`: the operand is the 32-bit immediate.
pub const BPF_K: u8 = 0x00;
/// `BPF_X`: the operand is the source register.
pub const BPF_X: u8 = 0x08;

// ALU operations (`BPF_OP(code)`).
/// `BPF_ADD`.
pub const BPF_ADD: u8 = 0x00;
/// `BPF_SUB`.
pub const BPF_SUB: u8 = 0x10;
/// `BPF_MUL`.
pub const BPF_MUL: u8 = 0x20;
/// `BPF_DIV` (unsigned).
pub const BPF_DIV: u8 = 0x30;
/// `BPF_OR`.
pub const BPF_OR: u8 = 0x40;
/// `BPF_AND`.
pub const BPF_AND: u8 = 0x50;
/// `BPF_LSH`.
pub const BPF_LSH: u8 = 0x60;
/// `BPF_RSH` (logical).
pub const BPF_RSH: u8 = 0x70;
/// `BPF_NEG`.
pub const BPF_NEG: u8 = 0x80;
/// `BPF_MOD` (unsigned).
pub const BPF_MOD: u8 = 0x90;
/// `BPF_XOR`.
pub const BPF_XOR: u8 = 0xa0;
/// `BPF_MOV`.
pub const BPF_MOV: u8 = 0xb0;
/// `BPF_ARSH` (arithmetic right shift).
pub const BPF_ARSH: u8 = 0xc0;
/// `BPF_END` (byte swap).
pub const BPF_END: u8 = 0xd0;

// Jump operations (`BPF_OP(code)` in the JMP classes).
/// `BPF_JA`: unconditional jump.
pub const BPF_JA: u8 = 0x00;
/// `BPF_JEQ`: `==`.
pub const BPF_JEQ: u8 = 0x10;
/// `BPF_JGT`: unsigned `>`.
pub const BPF_JGT: u8 = 0x20;
/// `BPF_JGE`: unsigned `>=`.
pub const BPF_JGE: u8 = 0x30;
/// `BPF_JSET`: `dst & src != 0`.
pub const BPF_JSET: u8 = 0x40;
/// `BPF_JNE`: `!=`.
pub const BPF_JNE: u8 = 0x50;
/// `BPF_JSGT`: signed `>`.
pub const BPF_JSGT: u8 = 0x60;
/// `BPF_JSGE`: signed `>=`.
pub const BPF_JSGE: u8 = 0x70;
/// `BPF_CALL`: call a helper by id.
pub const BPF_CALL: u8 = 0x80;
/// `BPF_EXIT`: return `r0`.
pub const BPF_EXIT: u8 = 0x90;
/// `BPF_JLT`: unsigned `<`.
pub const BPF_JLT: u8 = 0xa0;
/// `BPF_JLE`: unsigned `<=`.
pub const BPF_JLE: u8 = 0xb0;
/// `BPF_JSLT`: signed `<`.
pub const BPF_JSLT: u8 = 0xc0;
/// `BPF_JSLE`: signed `<=`.
pub const BPF_JSLE: u8 = 0xd0;

/// `BPF_PSEUDO_MAP_FD`: in a 64-bit immediate load, `imm` is a map fd the kernel replaces with
/// the map's address.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;

/// One eBPF register. `R10` is the read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reg {
    /// Return value, and helper return value.
    R0 = 0,
    /// First argument; holds the context pointer at program entry.
    R1 = 1,
    /// Second argument.
    R2 = 2,
    /// Third argument.
    R3 = 3,
    /// Fourth argument.
    R4 = 4,
    /// Fifth argument.
    R5 = 5,
    /// Callee-saved.
    R6 = 6,
    /// Callee-saved.
    R7 = 7,
    /// Callee-saved.
    R8 = 8,
    /// Callee-saved.
    R9 = 9,
    /// Frame pointer (read only).
    R10 = 10,
}

/// Memory access width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 8 bits (`BPF_B`).
    B,
    /// 16 bits (`BPF_H`).
    H,
    /// 32 bits (`BPF_W`).
    W,
    /// 64 bits (`BPF_DW`).
    DW,
}

impl Size {
    const fn code(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }
}

/// Arithmetic operation for [`Insn::alu64_imm`] and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// `dst /= src` (unsigned)
    Div,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src`
    Lsh,
    /// `dst >>= src` (logical)
    Rsh,
    /// `dst = -dst` (the operand is ignored)
    Neg,
    /// `dst %= src` (unsigned)
    Mod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// `dst >>= src` (arithmetic)
    Arsh,
}

impl AluOp {
    const fn code(self) -> u8 {
        match self {
            AluOp::Add => BPF_ADD,
            AluOp::Sub => BPF_SUB,
            AluOp::Mul => BPF_MUL,
            AluOp::Div => BPF_DIV,
            AluOp::Or => BPF_OR,
            AluOp::And => BPF_AND,
            AluOp::Lsh => BPF_LSH,
            AluOp::Rsh => BPF_RSH,
            AluOp::Neg => BPF_NEG,
            AluOp::Mod => BPF_MOD,
            AluOp::Xor => BPF_XOR,
            AluOp::Mov => BPF_MOV,
            AluOp::Arsh => BPF_ARSH,
        }
    }
}

/// Comparison of a conditional jump; the jump is taken when `dst <op> src` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// signed `<`
    Slt,
    /// signed `<=`
    Sle,
    /// `dst & src != 0`
    Set,
}

impl JmpOp {
    const fn code(self) -> u8 {
        match self {
            JmpOp::Eq => BPF_JEQ,
            JmpOp::Ne => BPF_JNE,
            JmpOp::Gt => BPF_JGT,
            JmpOp::Ge => BPF_JGE,
            JmpOp::Lt => BPF_JLT,
            JmpOp::Le => BPF_JLE,
            JmpOp::Sgt => BPF_JSGT,
            JmpOp::Sge => BPF_JSGE,
            JmpOp::Slt => BPF_JSLT,
            JmpOp::Sle => BPF_JSLE,
            JmpOp::Set => BPF_JSET,
        }
    }
}

/// Second operand of an ALU or jump instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// A 32-bit immediate (`BPF_K`), sign-extended to 64 bits by 64-bit operations.
    Imm(i32),
    /// A register (`BPF_X`).
    Reg(Reg),
}

// One eBPF instruction: the kernel's `struct bpf_insn`, mirrored in `sys/bpf.rs` (the loader
// passes programs to the kernel as they are); its constructors are here.
pub use crate::sys::bpf::bpf_insn as Insn;

const fn pack_regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0x0f)
    } else {
        (dst << 4) | (src & 0x0f)
    }
}

impl Insn {
    /// Build an instruction from raw fields. Register numbers above 15 are truncated to 4 bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: pack_regs(dst, src),
            off,
            imm,
        }
    }

    /// The destination register number.
    pub const fn dst(self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }

    /// The source register number.
    pub const fn src(self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }

    /// The 8 bytes the kernel reads for this instruction on this host.
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, self.regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// `dst = be{16,32,64}(dst)`: `bits` of `dst` to big-endian (`BPF_ALU | BPF_END |
    /// BPF_TO_BE`), upper bits zeroed.
    pub const fn to_be(dst: Reg, bits: i32) -> Insn {
        Insn::new(0x04 | 0xd0 | 0x08, dst as u8, 0, 0, bits)
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub const fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src` (64-bit).
    pub const fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Mov, dst, src)
    }

    /// `dst = imm` (32-bit; the upper half of `dst` is zeroed).
    pub const fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu32_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src` (32-bit; the upper half of `dst` is zeroed).
    pub const fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu32_reg(AluOp::Mov, dst, src)
    }

    /// `dst = dst <op> imm`, 64-bit.
    pub const fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | op.code() | BPF_K, dst as u8, 0, 0, imm)
    }

    /// `dst = dst <op> src`, 64-bit.
    pub const fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::new(BPF_ALU64 | op.code() | BPF_X, dst as u8, src as u8, 0, 0)
    }

    /// `dst = dst <op> imm`, 32-bit.
    pub const fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(BPF_ALU | op.code() | BPF_K, dst as u8, 0, 0, imm)
    }

    /// `dst = dst <op> src`, 32-bit.
    pub const fn alu32_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::new(BPF_ALU | op.code() | BPF_X, dst as u8, src as u8, 0, 0)
    }

    /// `dst = *(size *)(src + off)`.
    pub const fn ldx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            BPF_LDX | size.code() | BPF_MEM,
            dst as u8,
            src as u8,
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = src`.
    pub const fn stx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            BPF_STX | size.code() | BPF_MEM,
            dst as u8,
            src as u8,
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = imm`.
    pub const fn st_mem(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(BPF_ST | size.code() | BPF_MEM, dst as u8, 0, off, imm)
    }

    /// `if dst <op> imm goto pc + 1 + off` (64-bit compare).
    pub const fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | op.code() | BPF_K, dst as u8, 0, off, imm)
    }

    /// `if dst <op> src goto pc + 1 + off` (64-bit compare).
    pub const fn jmp_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(BPF_JMP | op.code() | BPF_X, dst as u8, src as u8, off, 0)
    }

    /// `if (u32)dst <op> imm goto pc + 1 + off` (32-bit compare).
    pub const fn jmp32_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP32 | op.code() | BPF_K, dst as u8, 0, off, imm)
    }

    /// `if (u32)dst <op> (u32)src goto pc + 1 + off` (32-bit compare).
    pub const fn jmp32_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(BPF_JMP32 | op.code() | BPF_X, dst as u8, src as u8, off, 0)
    }

    /// `goto pc + 1 + off`.
    pub const fn ja(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
    }

    /// Call kernel helper number `helper` (`enum bpf_func_id`); arguments in `r1`..`r5`, result in
    /// `r0`, `r1`..`r5` clobbered.
    pub const fn call(helper: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
    }

    /// Call the kernel function (kfunc) whose `vmlinux` BTF type id is `btf_id`
    /// (`src_reg = BPF_PSEUDO_KFUNC_CALL`); same register convention as [`Insn::call`].
    pub const fn call_kfunc(btf_id: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 2, 0, btf_id)
    }

    /// Return `r0` from the program.
    pub const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// `dst = imm64`: the two-slot `BPF_LD | BPF_DW | BPF_IMM`.
    pub const fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, 0, imm)
    }

    /// `dst = &map` for the map behind file descriptor `fd` (`BPF_PSEUDO_MAP_FD`); the kernel
    /// swaps the fd for the map address at load time and takes its own reference on the map.
    pub const fn ld_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, BPF_PSEUDO_MAP_FD, fd as u32 as u64)
    }

    const fn ld_imm64_raw(dst: Reg, src: u8, imm: u64) -> [Insn; 2] {
        [
            Insn::new(
                BPF_LD | BPF_DW | BPF_IMM,
                dst as u8,
                src,
                0,
                imm as u32 as i32,
            ),
            Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32),
        ]
    }
}

/// Flatten instructions into the byte image the kernel reads (`insns` of `BPF_PROG_LOAD`).
pub fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// A jump target inside a [`Program`] under construction. Create with [`Program::label`], place
/// with [`Program::bind`]; jumps may refer to it before it is bound (forward jumps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

pub use crate::error::AsmError;

#[derive(Debug, Clone, Copy)]
struct Fixup {
    at: usize,
    label: Label,
}

/// Assembler: collects instructions, resolves label jumps in [`Program::finish`].
///
/// ```
/// use fastpath::unstable::bpf::insn::{Insn, JmpOp, Program, Reg, Src};
/// let mut p = Program::new();
/// let out = p.label();
/// p.push(Insn::mov64_imm(Reg::R0, 1)); // XDP_DROP
/// p.jump_if(JmpOp::Eq, Reg::R1, Src::Imm(0), out);
/// p.push(Insn::mov64_imm(Reg::R0, 2)); // XDP_PASS
/// p.bind(out);
/// p.push(Insn::exit());
/// let insns = p.finish().unwrap();
/// assert_eq!(insns[1].off, 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Program {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<Fixup>,
    errors: Vec<AsmError>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Program {
        Program::default()
    }

    /// Number of instruction slots so far (a 64-bit immediate load counts two).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether no instruction was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Append one instruction.
    pub fn push(&mut self, insn: Insn) -> &mut Program {
        self.insns.push(insn);
        self
    }

    /// Append several instructions (e.g. the two slots of [`Insn::ld_map_fd`]).
    pub fn extend(&mut self, insns: impl IntoIterator<Item = Insn>) -> &mut Program {
        self.insns.extend(insns);
        self
    }

    /// A new, not yet placed label.
    pub fn label(&mut self) -> Label {
        let n = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.labels.push(None);
        Label(n)
    }

    /// Place `label` at the next instruction to be pushed.
    pub fn bind(&mut self, label: Label) -> &mut Program {
        let here = self.insns.len();
        match self.labels.get_mut(label.0 as usize) {
            None => self.errors.push(AsmError::ForeignLabel { label: label.0 }),
            Some(Some(first)) => self.errors.push(AsmError::LabelBoundTwice {
                label: label.0,
                first: *first,
                second: here,
            }),
            Some(slot @ None) => *slot = Some(here),
        }
        self
    }

    /// Unconditional jump to `label`.
    pub fn jump_to(&mut self, label: Label) -> &mut Program {
        self.push_fixup(Insn::ja(0), label)
    }

    /// `if dst <op> src goto label` (64-bit compare).
    pub fn jump_if(&mut self, op: JmpOp, dst: Reg, src: Src, label: Label) -> &mut Program {
        let insn = match src {
            Src::Imm(imm) => Insn::jmp_imm(op, dst, imm, 0),
            Src::Reg(r) => Insn::jmp_reg(op, dst, r, 0),
        };
        self.push_fixup(insn, label)
    }

    /// `if (u32)dst <op> src goto label` (32-bit compare).
    pub fn jump32_if(&mut self, op: JmpOp, dst: Reg, src: Src, label: Label) -> &mut Program {
        let insn = match src {
            Src::Imm(imm) => Insn::jmp32_imm(op, dst, imm, 0),
            Src::Reg(r) => Insn::jmp32_reg(op, dst, r, 0),
        };
        self.push_fixup(insn, label)
    }

    fn push_fixup(&mut self, insn: Insn, label: Label) -> &mut Program {
        self.fixups.push(Fixup {
            at: self.insns.len(),
            label,
        });
        self.push(insn)
    }

    /// Resolve every label jump and return the instructions.
    ///
    /// # Errors
    /// The first [`AsmError`] met: a label bound twice or foreign, a jump to an unbound label, or
    /// a distance that does not fit in 16 bits.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        for f in &self.fixups {
            let target = match self.labels.get(f.label.0 as usize) {
                None => return Err(AsmError::ForeignLabel { label: f.label.0 }),
                Some(None) => {
                    return Err(AsmError::UnboundLabel {
                        at: f.at,
                        label: f.label.0,
                    })
                }
                Some(Some(t)) => *t,
            };
            // Offsets are relative to the instruction after the jump. Both fit in i64: they are
            // Vec indices.
            let offset = target as i64 - (f.at as i64 + 1);
            let off = i16::try_from(offset)
                .map_err(|_| AsmError::OffsetOutOfRange { at: f.at, offset })?;
            self.insns[f.at].off = off;
        }
        Ok(self.insns)
    }
}

impl fmt::Display for Insn {
    /// Hex bytes as `bpftool prog dump xlated opcodes` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        write!(
            f,
            "{:02x} {:02x} {:02x} {:02x} {:02x} {:02x} {:02x} {:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn insn_is_8_bytes() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::align_of::<Insn>(), 4);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_mov_exit() {
        let prog = [Insn::mov64_imm(Reg::R0, 2), Insn::exit()];
        assert_eq!(
            to_bytes(&prog),
            [
                0xb7, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, //
                0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ]
        );
    }

    // Expected bytes worked out by hand from the instruction-set document (opcode = class | op |
    // source, regs = src << 4 | dst, little-endian off and imm); comments in llvm-objdump syntax.
    #[cfg(target_endian = "little")]
    #[test]
    fn golden_encodings() {
        let cases: &[(Insn, [u8; 8])] = &[
            // r2 = *(u32 *)(r1 + 16)
            (
                Insn::ldx_mem(Size::W, Reg::R2, Reg::R1, 16),
                [0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // r3 = *(u8 *)(r2 + 12)
            (
                Insn::ldx_mem(Size::B, Reg::R3, Reg::R2, 12),
                [0x71, 0x23, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // r1 = *(u16 *)(r6 + 12)
            (
                Insn::ldx_mem(Size::H, Reg::R1, Reg::R6, 12),
                [0x69, 0x61, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // r0 = *(u64 *)(r10 - 8)
            (
                Insn::ldx_mem(Size::DW, Reg::R0, Reg::R10, -8),
                [0x79, 0xa0, 0xf8, 0xff, 0x00, 0x00, 0x00, 0x00],
            ),
            // *(u64 *)(r10 - 8) = r1
            (
                Insn::stx_mem(Size::DW, Reg::R10, Reg::R1, -8),
                [0x7b, 0x1a, 0xf8, 0xff, 0x00, 0x00, 0x00, 0x00],
            ),
            // *(u32 *)(r10 - 4) = 7
            (
                Insn::st_mem(Size::W, Reg::R10, -4, 7),
                [0x62, 0x0a, 0xfc, 0xff, 0x07, 0x00, 0x00, 0x00],
            ),
            // r6 = r1
            (
                Insn::mov64_reg(Reg::R6, Reg::R1),
                [0xbf, 0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // w0 = 1
            (
                Insn::mov32_imm(Reg::R0, 1),
                [0xb4, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            ),
            // w1 = w2
            (
                Insn::mov32_reg(Reg::R1, Reg::R2),
                [0xbc, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // r2 += 14
            (
                Insn::alu64_imm(AluOp::Add, Reg::R2, 14),
                [0x07, 0x02, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00],
            ),
            // r1 -= r2
            (
                Insn::alu64_reg(AluOp::Sub, Reg::R1, Reg::R2),
                [0x1f, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // w1 &= 255
            (
                Insn::alu32_imm(AluOp::And, Reg::R1, 255),
                [0x54, 0x01, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00],
            ),
            // r1 <<= 32 ; r1 >>= 32 ; r1 s>>= 1
            (
                Insn::alu64_imm(AluOp::Lsh, Reg::R1, 32),
                [0x67, 0x01, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00],
            ),
            (
                Insn::alu64_imm(AluOp::Rsh, Reg::R1, 32),
                [0x77, 0x01, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00],
            ),
            (
                Insn::alu64_imm(AluOp::Arsh, Reg::R1, 1),
                [0xc7, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            ),
            // w3 ^= w4
            (
                Insn::alu32_reg(AluOp::Xor, Reg::R3, Reg::R4),
                [0xac, 0x43, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // if r1 == 0x800 goto +3
            (
                Insn::jmp_imm(JmpOp::Eq, Reg::R1, 0x800, 3),
                [0x15, 0x01, 0x03, 0x00, 0x00, 0x08, 0x00, 0x00],
            ),
            // if r3 > r2 goto +5
            (
                Insn::jmp_reg(JmpOp::Gt, Reg::R3, Reg::R2, 5),
                [0x2d, 0x23, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // if w1 != 17 goto -2
            (
                Insn::jmp32_imm(JmpOp::Ne, Reg::R1, 17, -2),
                [0x56, 0x01, 0xfe, 0xff, 0x11, 0x00, 0x00, 0x00],
            ),
            // if w1 s< w2 goto +1
            (
                Insn::jmp32_reg(JmpOp::Slt, Reg::R1, Reg::R2, 1),
                [0xce, 0x21, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // goto +7
            (
                Insn::ja(7),
                [0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
            // call bpf_redirect_map (51)
            (
                Insn::call(51),
                [0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00],
            ),
        ];
        for (insn, want) in cases {
            assert_eq!(insn.to_bytes(), *want, "{insn:?}");
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_ld_map_fd_and_imm64() {
        // r1 = map[fd 5] ll: 18 11 00 00 05 00 00 00 00 00 00 00 00 00 00 00
        let [a, b] = Insn::ld_map_fd(Reg::R1, 5);
        assert_eq!(
            to_bytes(&[a, b]),
            [
                0x18, 0x11, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ]
        );
        let [a, b] = Insn::ld_imm64(Reg::R2, 0x1122_3344_5566_7788);
        assert_eq!(
            to_bytes(&[a, b]),
            [
                0x18, 0x02, 0x00, 0x00, 0x88, 0x77, 0x66, 0x55, //
                0x00, 0x00, 0x00, 0x00, 0x44, 0x33, 0x22, 0x11,
            ]
        );
    }

    #[test]
    fn register_accessors_round_trip() {
        let i = Insn::jmp_reg(JmpOp::Ge, Reg::R9, Reg::R10, 0);
        assert_eq!((i.dst(), i.src()), (9, 10));
    }

    #[test]
    fn display_is_hex_bytes() {
        if cfg!(target_endian = "little") {
            assert_eq!(Insn::exit().to_string(), "95 00 00 00 00 00 00 00");
        }
    }

    #[test]
    fn forward_and_backward_labels() {
        let mut p = Program::new();
        let top = p.label();
        let end = p.label();
        p.bind(top); // 0
        p.push(Insn::mov64_imm(Reg::R0, 0)); // 0
        p.jump_if(JmpOp::Eq, Reg::R1, Src::Imm(1), end); // 1 -> 4: off 2
        p.jump32_if(JmpOp::Ne, Reg::R1, Src::Reg(Reg::R2), top); // 2 -> 0: off -3
        p.jump_to(end); // 3 -> 4: off 0
        p.bind(end);
        p.push(Insn::exit()); // 4
        let insns = p.finish().unwrap();
        assert_eq!(insns.len(), 5);
        assert_eq!(insns[1], Insn::jmp_imm(JmpOp::Eq, Reg::R1, 1, 2));
        assert_eq!(insns[2], Insn::jmp32_reg(JmpOp::Ne, Reg::R1, Reg::R2, -3));
        assert_eq!(insns[3], Insn::ja(0));
    }

    #[test]
    fn label_over_two_slot_load_counts_slots() {
        let mut p = Program::new();
        let end = p.label();
        p.jump_to(end); // 0
        p.extend(Insn::ld_map_fd(Reg::R1, 3)); // 1, 2
        p.bind(end);
        p.push(Insn::exit()); // 3
        let insns = p.finish().unwrap();
        assert_eq!(insns[0].off, 2);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut p = Program::new();
        let nowhere = p.label();
        p.push(Insn::mov64_imm(Reg::R0, 2));
        p.jump_to(nowhere);
        p.push(Insn::exit());
        assert_eq!(p.finish(), Err(AsmError::UnboundLabel { at: 1, label: 0 }));
    }

    #[test]
    fn label_bound_twice_is_an_error() {
        let mut p = Program::new();
        let l = p.label();
        p.bind(l);
        p.push(Insn::exit());
        p.bind(l);
        assert!(matches!(
            p.finish(),
            Err(AsmError::LabelBoundTwice {
                label: 0,
                first: 0,
                second: 1
            })
        ));
    }

    #[test]
    fn foreign_label_is_an_error() {
        let mut other = Program::new();
        let _ = other.label();
        let foreign = other.label();
        let mut p = Program::new();
        p.jump_to(foreign);
        assert_eq!(p.finish(), Err(AsmError::ForeignLabel { label: 1 }));
    }

    #[test]
    fn offset_limits() {
        // Exactly i16::MAX forward is fine...
        let mut p = Program::new();
        let end = p.label();
        p.jump_to(end);
        p.extend(vec![Insn::mov64_imm(Reg::R0, 0); 32767]);
        p.bind(end);
        p.push(Insn::exit());
        assert_eq!(p.finish().unwrap()[0].off, i16::MAX);

        // ...one more is not.
        let mut p = Program::new();
        let end = p.label();
        p.jump_to(end);
        p.extend(vec![Insn::mov64_imm(Reg::R0, 0); 32768]);
        p.bind(end);
        p.push(Insn::exit());
        assert_eq!(
            p.finish(),
            Err(AsmError::OffsetOutOfRange {
                at: 0,
                offset: 32768
            })
        );

        // Backward to i16::MIN is fine: target 0, jump at 32767 -> offset -32768.
        let mut p = Program::new();
        let top = p.label();
        p.bind(top);
        p.extend(vec![Insn::mov64_imm(Reg::R0, 0); 32767]);
        p.jump_to(top);
        assert_eq!(p.finish().unwrap()[32767].off, i16::MIN);
    }
}
