//! AST to classic BPF.
//!
//! Two steps: each primitive is lowered to a tree of tests ([`Cond`]) that mirrors the code
//! libpcap's `gencode.c` emits for it, test by test and in the same order (the order matters:
//! a load past the end of a short packet rejects the whole packet, so the tests before it
//! decide whether it is reached); then the tree is laid out with short-circuit jumps, ending in
//! `ret #snaplen` (accept) and `ret #0` (reject). Conditional jumps reach at most 255
//! instructions; farther targets go through a `ja`.

use super::cbpf::*;
use super::parse::{words, Arith, BinOp, Dir, Expr, Net, Off, Prim, Proto, RelOp};

/// A boolean combination of tests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Const(bool),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    /// Run `pre` (loads and arithmetic into A, maybe X), then jump on `A <code> k|X`.
    Test {
        pre: Vec<Insn>,
        code: u16,
        k: u32,
    },
}

fn and(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(true), x) | (x, Cond::Const(true)) => x,
        (Cond::Const(false), _) => Cond::Const(false),
        (a, b) => Cond::And(Box::new(a), Box::new(b)),
    }
}

fn or(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(false), x) | (x, Cond::Const(false)) => x,
        (Cond::Const(true), _) => Cond::Const(true),
        (a, b) => Cond::Or(Box::new(a), Box::new(b)),
    }
}

fn not(a: Cond) -> Cond {
    match a {
        Cond::Const(b) => Cond::Const(!b),
        Cond::Not(x) => *x,
        x => Cond::Not(Box::new(x)),
    }
}

fn ld(size: u16, off: u32) -> Insn {
    Insn::stmt(BPF_LD | size | BPF_ABS, off)
}

fn test(pre: Vec<Insn>, code: u16, k: u32) -> Cond {
    Cond::Test {
        pre,
        code: BPF_JMP | code | BPF_K,
        k,
    }
}

fn eq(load: Insn, k: u32) -> Cond {
    test(vec![load], BPF_JEQ, k)
}

fn ethertype(off: Off, t: u16) -> Cond {
    eq(ld(BPF_H, off.link), u32::from(t))
}

fn dir(d: Dir, src: Cond, dst: Cond) -> Cond {
    match d {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => or(src, dst),
        Dir::Both => and(src, dst),
    }
}

/// `ip proto p` with IPv6's one-fragment-header chase (`ip6[6] == 44 and ip6[40] == p`), as
/// libpcap does.
fn ip_proto(off: Off, v4: bool, v6: bool, p: u8) -> Cond {
    let p = u32::from(p);
    let c4 = and(ethertype(off, 0x0800), eq(ld(BPF_B, off.net + 9), p));
    let c6 = and(
        ethertype(off, 0x86dd),
        or(
            eq(ld(BPF_B, off.net + 6), p),
            and(
                eq(ld(BPF_B, off.net + 6), 44),
                eq(ld(BPF_B, off.net + 40), p),
            ),
        ),
    );
    match (v4, v6) {
        (true, true) => or(c4, c6),
        (true, false) => c4,
        (false, true) => c6,
        (false, false) => Cond::Const(false),
    }
}

fn v4_word(at: u32, addr: u32, mask: u32) -> Cond {
    if mask == 0 {
        // Always true; libpcap's optimizer drops the load too, which matters for short packets.
        return Cond::Const(true);
    }
    let mut pre = vec![ld(BPF_W, at)];
    if mask != u32::MAX {
        pre.push(Insn::stmt(BPF_ALU | BPF_AND | BPF_K, mask));
    }
    test(pre, BPF_JEQ, addr & mask)
}

fn v6_addr(at: u32, addr: u128, mask: u128) -> Cond {
    let (a, m) = (words(addr), words(mask));
    let mut c = Cond::Const(true);
    for i in 0..4 {
        if m[i] != 0 {
            c = and(c, v4_word(at + 4 * i as u32, a[i], m[i]));
        }
    }
    c
}

/// The transport port loads of IPv4 (`ldxb 4*([net]&0xf); ldh [x + net + rel]`).
fn port4(off: Off, rel: u32) -> Vec<Insn> {
    vec![
        Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, off.net),
        Insn::stmt(BPF_LD | BPF_H | BPF_IND, off.net + rel),
    ]
}

fn port_test(pre: Vec<Insn>, ranges: &[(u16, u16)]) -> Cond {
    ranges.iter().fold(Cond::Const(false), |c, &(lo, hi)| {
        let t = if lo == hi {
            test(pre.clone(), BPF_JEQ, u32::from(lo))
        } else {
            and(
                test(pre.clone(), BPF_JGE, u32::from(lo)),
                not(test(pre.clone(), BPF_JGT, u32::from(hi))),
            )
        };
        or(c, t)
    })
}

/// Merges `port A or port B` (same protocol, direction and offsets) into one primitive.
fn merge_ports(e: &Expr) -> Expr {
    match e {
        Expr::Or(a, b) => {
            let (a, b) = (merge_ports(a), merge_ports(b));
            if let (
                Expr::Prim(Prim::Port {
                    off,
                    proto,
                    dir,
                    ranges,
                }),
                Expr::Prim(Prim::Port {
                    off: off2,
                    proto: proto2,
                    dir: dir2,
                    ranges: ranges2,
                }),
            ) = (&a, &b)
            {
                if (off, proto, dir) == (off2, proto2, dir2) {
                    let mut all = ranges.clone();
                    all.extend_from_slice(ranges2);
                    return Expr::Prim(Prim::Port {
                        off: *off,
                        proto: *proto,
                        dir: *dir,
                        ranges: all,
                    });
                }
            }
            Expr::Or(Box::new(a), Box::new(b))
        }
        Expr::And(a, b) => Expr::And(Box::new(merge_ports(a)), Box::new(merge_ports(b))),
        Expr::Not(a) => Expr::Not(Box::new(merge_ports(a))),
        other => other.clone(),
    }
}

fn prim(p: &Prim) -> Cond {
    match *p {
        Prim::EtherType(off, t) => ethertype(off, t),
        Prim::IpProto { off, v4, v6, proto } => ip_proto(off, v4, v6, proto),
        Prim::Host {
            off,
            proto,
            dir: d,
            net,
        } => host(off, proto, d, net),
        Prim::EtherHost { dir: d, mac } => ether_host(d, mac),
        Prim::EtherBroadcast => and(eq(ld(BPF_W, 2), u32::MAX), eq(ld(BPF_H, 0), 0xffff)),
        Prim::EtherMulticast => test(vec![ld(BPF_B, 0)], BPF_JSET, 1),
        Prim::Port {
            off,
            proto,
            dir: d,
            ref ranges,
        } => port(off, proto, d, ranges),
        Prim::Vlan { off, id } => vlan(off, id),
    }
}

/// `[ip|ip6|arp|rarp] [dir] host|net`: IPv4 addresses in IPv4, ARP and RARP (unless the
/// protocol says which), IPv6 addresses in IPv6.
fn host(off: Off, proto: Option<Proto>, d: Dir, net: Net) -> Cond {
    match net {
        Net::V4 { addr, mask } => {
            let ip = and(
                ethertype(off, 0x0800),
                dir(
                    d,
                    v4_word(off.net + 12, addr, mask),
                    v4_word(off.net + 16, addr, mask),
                ),
            );
            let arp_addrs = dir(
                d,
                v4_word(off.net + 14, addr, mask),
                v4_word(off.net + 24, addr, mask),
            );
            let arp = and(ethertype(off, 0x0806), arp_addrs.clone());
            let rarp = and(ethertype(off, 0x8035), arp_addrs);
            match proto {
                Some(Proto::Ip) => ip,
                Some(Proto::Arp) => arp,
                Some(Proto::Rarp) => rarp,
                _ => or(or(ip, arp), rarp),
            }
        }
        Net::V6 { addr, mask } => and(
            ethertype(off, 0x86dd),
            dir(
                d,
                v6_addr(off.net + 8, addr, mask),
                v6_addr(off.net + 24, addr, mask),
            ),
        ),
    }
}

/// `ether [dir] host MAC`.
fn ether_host(d: Dir, mac: [u8; 6]) -> Cond {
    let lo = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let hi = u32::from(u16::from_be_bytes([mac[0], mac[1]]));
    let at = |base: u32| and(eq(ld(BPF_W, base + 2), lo), eq(ld(BPF_H, base), hi));
    dir(d, at(6), at(0))
}

/// `[tcp|udp|sctp] [dir] port|portrange`: over IPv6, then over the first IPv4 fragment.
fn port(off: Off, proto: Option<u8>, d: Dir, ranges: &[(u16, u16)]) -> Cond {
    let protos: Vec<u32> = match proto {
        Some(p) => vec![u32::from(p)],
        None => vec![132, 6, 17],
    };
    let proto_at = |at: u32| {
        protos
            .iter()
            .fold(Cond::Const(false), |c, &p| or(c, eq(ld(BPF_B, at), p)))
    };
    let v6 = and(
        and(ethertype(off, 0x86dd), proto_at(off.net + 6)),
        dir(
            d,
            port_test(vec![ld(BPF_H, off.net + 40)], ranges),
            port_test(vec![ld(BPF_H, off.net + 42)], ranges),
        ),
    );
    let v4 = and(
        and(
            and(ethertype(off, 0x0800), proto_at(off.net + 9)),
            not(test(vec![ld(BPF_H, off.net + 6)], BPF_JSET, 0x1fff)),
        ),
        dir(
            d,
            port_test(port4(off, 0), ranges),
            port_test(port4(off, 2), ranges),
        ),
    );
    or(v6, v4)
}

/// `vlan [id]`: an 802.1Q, 802.1ad or old QinQ TPID at the link-type offset, and the id.
fn vlan(off: Off, id: Option<u16>) -> Cond {
    let tagged = or(
        or(
            eq(ld(BPF_H, off.link), 0x8100),
            eq(ld(BPF_H, off.link), 0x88a8),
        ),
        eq(ld(BPF_H, off.link), 0x9100),
    );
    match id {
        None => tagged,
        Some(id) => and(
            tagged,
            test(
                vec![
                    ld(BPF_H, off.link + 2),
                    Insn::stmt(BPF_ALU | BPF_AND | BPF_K, 0xfff),
                ],
                BPF_JEQ,
                u32::from(id),
            ),
        ),
    }
}

/// Why code generation failed (reported at column 1: the whole expression).
pub(crate) type GenError = String;

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
                let off = *off;
                let sz = size_code(*size);
                // Where the offsets count from, and the checks that make it meaningful.
                enum Base {
                    Abs(u32),
                    Transport,
                }
                let base = match proto {
                    Proto::Ether => Base::Abs(0),
                    Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp => {
                        self.check(ethertype(off, proto.ethertype().unwrap_or(0)));
                        Base::Abs(off.net)
                    }
                    Proto::Icmp6 => {
                        // libpcap: the IPv6 next header must be ICMPv6 (no chase), and the
                        // ICMPv6 header is taken to follow the fixed 40-byte header.
                        self.check(ethertype(off, 0x86dd));
                        self.check(eq(ld(BPF_B, off.net + 6), 58));
                        Base::Abs(off.net + 40)
                    }
                    Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Icmp | Proto::Igmp => {
                        // IPv4 only, first fragment only, as libpcap.
                        self.check(ethertype(off, 0x0800));
                        self.check(eq(
                            ld(BPF_B, off.net + 9),
                            u32::from(proto.ip_proto().unwrap_or(0)),
                        ));
                        self.check(not(test(vec![ld(BPF_H, off.net + 6)], BPF_JSET, 0x1fff)));
                        Base::Transport
                    }
                };
                match (base, fold(index)?) {
                    (Base::Abs(b), Some(k)) => out.push(ld(sz, b.wrapping_add(k))),
                    (Base::Abs(b), None) => {
                        self.emit(index, out, depth)?;
                        out.push(Insn::stmt(BPF_MISC | BPF_TAX, 0));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, b));
                    }
                    (Base::Transport, Some(k)) => {
                        out.push(Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, off.net));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, off.net.wrapping_add(k)));
                    }
                    (Base::Transport, None) => {
                        self.emit(index, out, depth)?;
                        out.push(Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, off.net));
                        out.push(Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0));
                        out.push(Insn::stmt(BPF_MISC | BPF_TAX, 0));
                        out.push(Insn::stmt(BPF_LD | sz | BPF_IND, off.net));
                    }
                }
                // Protocol checks of loads inside the index come before this one's.
            }
        }
        Ok(())
    }
}

fn relation(op: RelOp, lhs: &Arith, rhs: &Arith) -> Result<Cond, GenError> {
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
        g.emit(lhs, &mut pre, 0)?;
        Cond::Test {
            pre,
            code: BPF_JMP | code | BPF_K,
            k,
        }
    } else {
        let mut pre = Vec::new();
        g.emit(rhs, &mut pre, 0)?;
        pre.push(Insn::stmt(BPF_ST, 0));
        g.emit(lhs, &mut pre, 1)?;
        pre.push(Insn::stmt(BPF_LDX | BPF_MEM, 0));
        Cond::Test {
            pre,
            code: BPF_JMP | code | BPF_X,
            k: 0,
        }
    };
    let t = if negate { not(t) } else { t };
    // libpcap evaluates the protocol checks of both sides before the comparison.
    Ok(g.checks.into_iter().rev().fold(t, |acc, c| and(c, acc)))
}

fn lower(e: &Expr) -> Result<Cond, GenError> {
    Ok(match e {
        Expr::True => Cond::Const(true),
        Expr::And(a, b) => and(lower(a)?, lower(b)?),
        Expr::Or(a, b) => or(lower(a)?, lower(b)?),
        Expr::Not(a) => not(lower(a)?),
        Expr::Prim(p) => prim(p),
        Expr::Rel(op, l, r) => relation(*op, l, r)?,
    })
}

/// A jump target in the layout.
pub(super) type Label = usize;

/// One instruction of a layout, its jumps still symbolic.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Plain(Insn),
    Ja(Label),
    Cond {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ret(u32),
}

/// Instructions with symbolic jumps, resolved by [`Layout::finish`].
#[derive(Debug, Default)]
pub(super) struct Layout {
    pub(super) slots: Vec<Slot>,
    /// Slot index each label is bound to.
    labels: Vec<Option<usize>>,
}

impl Layout {
    pub(super) fn label(&mut self) -> Label {
        self.labels.push(None);
        self.labels.len() - 1
    }

    /// Binds `l` to the next slot pushed.
    pub(super) fn bind(&mut self, l: Label) {
        self.labels[l] = Some(self.slots.len());
    }

    fn gen(&mut self, c: &Cond, t: Label, f: Label) {
        match c {
            Cond::Const(true) => self.slots.push(Slot::Ja(t)),
            Cond::Const(false) => self.slots.push(Slot::Ja(f)),
            Cond::Not(x) => self.gen(x, f, t),
            Cond::And(a, b) => {
                let m = self.label();
                self.gen(a, m, f);
                self.bind(m);
                self.gen(b, t, f);
            }
            Cond::Or(a, b) => {
                let m = self.label();
                self.gen(a, t, m);
                self.bind(m);
                self.gen(b, t, f);
            }
            Cond::Test { pre, code, k } => {
                self.slots.extend(pre.iter().map(|&i| Slot::Plain(i)));
                self.slots.push(Slot::Cond {
                    code: *code,
                    k: *k,
                    jt: t,
                    jf: f,
                });
            }
        }
    }

    /// Resolves labels to offsets: drops jumps to the next slot, threads jumps to `ja`/`ret`
    /// slots, and routes conditional jumps longer than 255 through an inserted `ja`.
    pub(super) fn finish(mut self) -> Result<Vec<Insn>, GenError> {
        loop {
            // Drop `ja` to the very next slot.
            let mut removed = false;
            let mut i = 0;
            while i < self.slots.len() {
                if let Slot::Ja(l) = self.slots[i] {
                    if self.labels[l] == Some(i + 1) {
                        self.slots.remove(i);
                        for p in self.labels.iter_mut().flatten() {
                            if *p > i {
                                *p -= 1;
                            }
                        }
                        removed = true;
                        continue;
                    }
                }
                i += 1;
            }
            if !removed {
                break;
            }
        }
        loop {
            let pos = |l: Label, labels: &[Option<usize>]| labels[l].unwrap_or(0);
            let mut far: Option<(usize, bool)> = None;
            for (i, s) in self.slots.iter().enumerate() {
                if let Slot::Cond { jt, jf, .. } = *s {
                    let dt = pos(jt, &self.labels) as i64 - i as i64 - 1;
                    let df = pos(jf, &self.labels) as i64 - i as i64 - 1;
                    if dt > 255 {
                        far = Some((i, true));
                        break;
                    }
                    if df > 255 {
                        far = Some((i, false));
                        break;
                    }
                }
            }
            let Some((i, is_true)) = far else { break };
            let Slot::Cond { code, k, jt, jf } = self.slots[i] else {
                unreachable!("`far` indexes a conditional jump")
            };
            let tramp = self.label();
            self.slots
                .insert(i + 1, Slot::Ja(if is_true { jt } else { jf }));
            for p in self.labels.iter_mut().flatten() {
                if *p > i {
                    *p += 1;
                }
            }
            self.labels[tramp] = Some(i + 1);
            self.slots[i] = if is_true {
                Slot::Cond {
                    code,
                    k,
                    jt: tramp,
                    jf,
                }
            } else {
                Slot::Cond {
                    code,
                    k,
                    jt,
                    jf: tramp,
                }
            };
        }
        let pos = |l: Label| self.labels[l].unwrap_or(0);
        let insns: Vec<Insn> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| match *s {
                Slot::Plain(insn) => insn,
                Slot::Ret(k) => Insn::ret(k),
                Slot::Ja(l) => Insn::stmt(BPF_JMP | BPF_JA, (pos(l) - i - 1) as u32),
                Slot::Cond { code, k, jt, jf } => {
                    Insn::jump(code, k, (pos(jt) - i - 1) as u8, (pos(jf) - i - 1) as u8)
                }
            })
            .collect();
        if insns.len() > BPF_MAXINSNS {
            return Err(format!(
                "the program needs {} instructions, more than the kernel's {BPF_MAXINSNS}",
                insns.len()
            ));
        }
        Ok(insns)
    }
}

/// Compiles `e` to a program whose accepting return value is `snaplen`.
pub(crate) fn compile(e: &Expr, snaplen: u32) -> Result<Vec<Insn>, GenError> {
    let c = lower(&merge_ports(e))?;
    match c {
        Cond::Const(true) => return Ok(vec![Insn::ret(snaplen)]),
        Cond::Const(false) => return Ok(vec![Insn::ret(0)]),
        _ => {}
    }
    let mut l = Layout::default();
    let accept = l.label();
    let reject = l.label();
    l.gen(&c, accept, reject);
    l.bind(accept);
    l.slots.push(Slot::Ret(snaplen));
    l.bind(reject);
    l.slots.push(Slot::Ret(0));
    let mut prog = l.finish()?;
    // A packet load at 2 GiB or more fails on any real packet, so the run ends there with 0;
    // say so explicitly: the kernel reads such offsets as negative ones (`SKF_NET_OFF`,
    // `SKF_LL_OFF`, ancillary fields) and would go on. Same instruction count, same jumps.
    for i in &mut prog {
        if is_packet_load(i.code) && i.k >= 1 << 31 {
            *i = Insn::ret(0);
        }
    }
    Ok(prog)
}
