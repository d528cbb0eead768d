//! Relations (`expr relop expr`) and arithmetic: constants folded, loads from the headers with
//! the protocol checks libpcap puts before them.

use super::link::link_proto;
use super::net::{first_fragment, ip_header_len};
use super::{and, eq_at, Cond, GenError};
use crate::filter::cbpf::*;
use crate::filter::parse::{Arith, BinOp, Proto, RelOp};

/// Arithmetic code generation state.
struct ArithGen {
    /// Protocol checks the loads need, in the order met.
    checks: Vec<Cond>,
}

fn fold(e: &Arith) -> Result<Option<u32>, GenError> {
    Ok(match e {
        Arith::Num(n) => Some(*n),
        Arith::Len | Arith::Load { .. } => None,
        Arith::Neg(x) => fold(x)?.map(u32::wrapping_neg),
        Arith::Bin(op, a, b) => {
            let (Some(a), Some(b)) = (fold(a)?, fold(b)?) else {
                // Still catch a constant zero divisor.
                if matches!(op, BinOp::Div | BinOp::Mod) && fold(b)? == Some(0) {
                    return Err("division by zero".into());
                }
                return Ok(None);
            };
            Some(binop(*op, a, b).ok_or_else(|| GenError::from("division by zero"))?)
        }
    })
}

fn binop(op: BinOp, a: u32, b: u32) -> Option<u32> {
    Some(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div => a.checked_div(b)?,
        BinOp::Mod => a.checked_rem(b)?,
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Lsh => a.wrapping_shl(b),
        BinOp::Rsh => a.wrapping_shr(b),
    })
}

fn alu_code(op: BinOp) -> u16 {
    match op {
        BinOp::Add => BPF_ADD,
        BinOp::Sub => BPF_SUB,
        BinOp::Mul => BPF_MUL,
        BinOp::Div => BPF_DIV,
        BinOp::Mod => BPF_MOD,
        BinOp::And => BPF_AND,
        BinOp::Or => BPF_OR,
        BinOp::Xor => BPF_XOR,
        BinOp::Lsh => BPF_LSH,
        BinOp::Rsh => BPF_RSH,
    }
}

fn size_code(size: u8) -> u16 {
    match size {
        4 => BPF_W,
        2 => BPF_H,
        _ => BPF_B,
    }
}

fn scratch(depth: u32) -> Result<u32, GenError> {
    if depth >= BPF_MEMWORDS {
        Err("expression too complex: it needs more than 16 scratch memory words".into())
    } else {
        Ok(depth)
    }
}

impl ArithGen {
    fn check(&mut self, c: Cond) {
        if !self.checks.contains(&c) {
            self.checks.push(c);
        }
    }

    /// Emits code leaving the value of `e` in A; scratch words from `depth` up are free.
    fn emit(&mut self, e: &Arith, out: &mut Vec<Insn>, depth: u32) -> Result<(), GenError> {
        if let Some(k) = fold(e)? {
            out.push(Insn::stmt(BPF_LD | BPF_IMM, k));
            return Ok(());
        }
        match e {
            Arith::Num(k) => out.push(Insn::stmt(BPF_LD | BPF_IMM, *k)),
            Arith::Len => out.push(Insn::stmt(BPF_LD | BPF_W | BPF_LEN, 0)),
            Arith::Neg(x) => {
                self.emit(x, out, depth)?;
                out.push(Insn::stmt(BPF_ALU | BPF_NEG, 0));
            }
            Arith::Bin(op, a, b) => {
                if let Some(k) = fold(b)? {
                    if matches!(op, BinOp::Lsh | BinOp::Rsh) && k >= 32 {
                        return Err(format!("shift by {k}: the amount must be below 32"));
                    }
                    self.emit(a, out, depth)?;
                    out.push(Insn::stmt(BPF_ALU | alu_code(*op) | BPF_K, k));
                } else {
                    let m = scratch(depth)?;
                    self.emit(b, out, depth)?;
                    out.push(Insn::stmt(BPF_ST, m));
                    self.emit(a, out, depth + 1)?;
                    out.push(Insn::stmt(BPF_LDX | BPF_MEM, m));
                    out.push(Insn::stmt(BPF_ALU | alu_code(*op) | BPF_X, 0));
                }
            }
            Arith::Load {
                proto,
                off,
                index,
                size,
            } => {
                let sz = size_code(*size);
                // Where the offsets count from, and the checks that make it meaningful.
                enum Base {
                    /// A header at this position.
                    At(crate::filter::parse::Pos),
                    /// The header after the (variable-length) IPv4 header.
                    Transport,
                }
                let base = match proto {
                    Proto::Ether => Base::At(off.linkhdr),
                    Proto::Icmp6 => {
                        // libpcap: the IPv6 next header must be ICMPv6 (no chase), and the
                        // ICMPv6 header is taken to follow the fixed 40-byte header.
                        self.check(link_proto(off, 0x86dd));
                        self.check(eq_at(off.net, 6, BPF_B, 58));
                        Base::At(off.net.plus(40))
                    }
                    p => match (p.link_proto(), p.ip_proto()) {
                        (Some(ll), _) => {
                            self.check(link_proto(off, ll));
                            Base::At(off.net)
                        }
                        (None, Some(ip)) => {
                            // Over IPv4 only, first fragment only, as libpcap.
                            self.check(link_proto(off, 0x0800));
                            self.check(eq_at(off.net, 9, BPF_B, u32::from(ip)));
                            self.check(first_fragment(off));
                            Base::Transport
                        }
                        (None, None) => {
                            return Err(format!(
                                "'{}' does not support the index operation",
                                p.name()
                            ))
                        }
                    },
                };
                let k = fold(index)?;
                match (base, k) {
                    (Base::At(pos), Some(k)) => out.extend(super::load(pos, k, sz)),
                    (Base::At(pos), None) => {
                        self.emit(index, out, depth)?;
                        if let Some(r) = pos.reg {
                            out.push(Insn::stmt(BPF_LDX | BPF_MEM, r));
                            out.push(Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0));
                        }
                        out.push(Insn::stmt(BPF_MISC | BPF_TAX, 0));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, pos.k));
                    }
                    (Base::Transport, Some(k)) => {
                        out.extend(ip_header_len(off));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, off.net.k.wrapping_add(k)));
                    }
                    (Base::Transport, None) => {
                        self.emit(index, out, depth)?;
                        if off.net.reg.is_some() {
                            // X is needed to find the header: keep the index meanwhile.
                            let m = scratch(depth)?;
                            out.push(Insn::stmt(BPF_ST, m));
                            out.extend(ip_header_len(off));
                            out.push(Insn::stmt(BPF_LD | BPF_MEM, m));
                        } else {
                            out.extend(ip_header_len(off));
                        }
                        out.push(Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0));
                        out.push(Insn::stmt(BPF_MISC | BPF_TAX, 0));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, off.net.k));
                    }
                }
                // Protocol checks of loads inside the index come before this one's.
            }
        }
        Ok(())
    }
}

/// `lhs op rhs`; scratch words from `base` on are free.
pub(super) fn relation(op: RelOp, lhs: &Arith, rhs: &Arith, base: u32) -> Result<Cond, GenError> {
    let (code, negate) = match op {
        RelOp::Eq => (BPF_JEQ, false),
        RelOp::Ne => (BPF_JEQ, true),
        RelOp::Gt => (BPF_JGT, false),
        RelOp::Ge => (BPF_JGE, false),
        RelOp::Lt => (BPF_JGE, true),
        RelOp::Le => (BPF_JGT, true),
    };
    let mut g = ArithGen { checks: Vec::new() };
    let (l, r) = (fold(lhs)?, fold(rhs)?);
    let t = if let (Some(l), Some(r)) = (l, r) {
        let v = match code {
            BPF_JEQ => l == r,
            BPF_JGT => l > r,
            _ => l >= r,
        };
        Cond::Const(v)
    } else if let Some(k) = r {
        let mut pre = Vec::new();
        g.emit(lhs, &mut pre, base)?;
        Cond::Test {
            pre,
            code: BPF_JMP | code | BPF_K,
            k,
        }
    } else {
        let mut pre = Vec::new();
        let m = scratch(base)?;
        g.emit(rhs, &mut pre, base)?;
        pre.push(Insn::stmt(BPF_ST, m));
        g.emit(lhs, &mut pre, base + 1)?;
        pre.push(Insn::stmt(BPF_LDX | BPF_MEM, m));
        Cond::Test {
            pre,
            code: BPF_JMP | code | BPF_X,
            k: 0,
        }
    };
    let t = if negate { super::not(t) } else { t };
    // libpcap evaluates the protocol checks of both sides before the comparison.
    Ok(g.checks.into_iter().rev().fold(t, |acc, c| and(c, acc)))
}
