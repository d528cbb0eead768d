//! AST to classic BPF.
//!
//! Two steps: each primitive is lowered to a tree of tests ([`Cond`]) that mirrors the code
//! libpcap's `gencode.c` emits for it, test by test and in the same order (the order matters:
//! a load past the end of a short packet rejects the whole packet, so the tests before it
//! decide whether it is reached); then the tree is laid out with short-circuit jumps, ending in
//! `ret #snaplen` (accept) and `ret #0` (reject). Conditional jumps reach at most 255
//! instructions; farther targets go through a `ja`.
//!
//! Chains of `and` and of `or` are lists here too, so lowering and layout recurse only as deep
//! as the expression nests (bounded by the parser), however long the chains.
//!
//! Implementation: `link.rs` (the link layer and the encapsulations: EtherTypes, 802.2 LLC,
//! Ethernet addresses, VLAN, MPLS, PPPoE, Geneve, VXLAN, packet direction), `net.rs` (IP, ARP,
//! DECnet and OSI: protocols, hosts, networks, ports), `arith.rs` (relations and arithmetic).

mod arith;
mod link;
mod net;

use super::cbpf::*;
use super::parse::{Dir, Expr, Pos, Prim};

/// A boolean combination of tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cond {
    Const(bool),
    Not(Box<Cond>),
    /// All, evaluated in order.
    And(Vec<Cond>),
    /// Any, evaluated in order.
    Or(Vec<Cond>),
    /// Run `pre` (loads and arithmetic into A, maybe X), then jump on `A <code> k|X`.
    Test {
        pre: Vec<Insn>,
        code: u16,
        k: u32,
    },
}

/// `a` and then `b`.
pub(super) fn and(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(true), x) | (x, Cond::Const(true)) => x,
        (Cond::Const(false), _) => Cond::Const(false),
        (Cond::And(mut v), Cond::And(w)) => {
            v.extend(w);
            Cond::And(v)
        }
        (Cond::And(mut v), b) => {
            v.push(b);
            Cond::And(v)
        }
        (a, Cond::And(mut w)) => {
            w.insert(0, a);
            Cond::And(w)
        }
        (a, b) => Cond::And(vec![a, b]),
    }
}

/// `a`, else `b`.
pub(super) fn or(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::Const(false), x) | (x, Cond::Const(false)) => x,
        (Cond::Const(true), _) => Cond::Const(true),
        (Cond::Or(mut v), Cond::Or(w)) => {
            v.extend(w);
            Cond::Or(v)
        }
        (Cond::Or(mut v), b) => {
            v.push(b);
            Cond::Or(v)
        }
        (a, Cond::Or(mut w)) => {
            w.insert(0, a);
            Cond::Or(w)
        }
        (a, b) => Cond::Or(vec![a, b]),
    }
}

pub(super) fn not(a: Cond) -> Cond {
    match a {
        Cond::Const(b) => Cond::Const(!b),
        Cond::Not(x) => *x,
        x => Cond::Not(Box::new(x)),
    }
}

pub(super) fn ld(size: u16, off: u32) -> Insn {
    Insn::stmt(BPF_LD | size | BPF_ABS, off)
}

/// Loads `size` bytes at `rel` past `pos` into A (through X when `pos` is in a scratch word).
pub(super) fn load(pos: Pos, rel: u32, size: u16) -> Vec<Insn> {
    let k = pos.k.wrapping_add(rel);
    match pos.reg {
        None => vec![ld(size, k)],
        Some(r) => vec![
            Insn::stmt(BPF_LDX | BPF_MEM, r),
            Insn::stmt(BPF_LD | size | BPF_IND, k),
        ],
    }
}

pub(super) fn test(pre: Vec<Insn>, code: u16, k: u32) -> Cond {
    Cond::Test {
        pre,
        code: BPF_JMP | code | BPF_K,
        k,
    }
}

/// `size` bytes at `rel` past `pos` equal `k`.
pub(super) fn eq_at(pos: Pos, rel: u32, size: u16, k: u32) -> Cond {
    test(load(pos, rel, size), BPF_JEQ, k)
}

/// `size` bytes at `rel` past `pos`, masked with `mask`, equal `k` (libpcap's `gen_mcmp`).
pub(super) fn masked_eq(pos: Pos, rel: u32, size: u16, mask: u32, k: u32) -> Cond {
    let mut pre = load(pos, rel, size);
    if mask != u32::MAX {
        pre.push(Insn::stmt(BPF_ALU | BPF_AND | BPF_K, mask));
    }
    test(pre, BPF_JEQ, k)
}

pub(super) fn dir(d: Dir, src: Cond, dst: Cond) -> Cond {
    match d {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => or(src, dst),
        Dir::Both => and(src, dst),
    }
}

/// Merges `port A or port B` (same protocols, direction and offsets, next to each other in an
/// `or` chain) into one primitive.
fn merge_ports(e: &Expr) -> Expr {
    match e {
        Expr::Or(v) => {
            let mut out: Vec<Expr> = Vec::with_capacity(v.len());
            for x in v {
                let x = merge_ports(x);
                if let (
                    Some(Expr::Prim(Prim::Port {
                        off,
                        protos,
                        dir,
                        ranges,
                    })),
                    Expr::Prim(Prim::Port {
                        off: off2,
                        protos: protos2,
                        dir: dir2,
                        ranges: ranges2,
                    }),
                ) = (out.last_mut(), &x)
                {
                    if (&*off, &*protos, &*dir) == (off2, protos2, dir2) {
                        ranges.extend_from_slice(ranges2);
                        continue;
                    }
                }
                out.push(x);
            }
            Expr::Or(out)
        }
        Expr::And(v) => Expr::And(v.iter().map(merge_ports).collect()),
        Expr::Not(a) => Expr::Not(Box::new(merge_ports(a))),
        other => other.clone(),
    }
}

fn prim(p: &Prim) -> Cond {
    match *p {
        Prim::LinkProto(ref off, ll) => link::link_proto(off, ll),
        Prim::IpProto {
            ref off,
            v4,
            v6,
            proto,
        } => net::ip_proto(off, v4, v6, proto),
        Prim::OsiProto {
            ref off,
            isis,
            proto,
        } => net::osi_proto(off, isis, proto),
        Prim::Host {
            ref off,
            proto,
            dir: d,
            net: n,
        } => net::host(off, proto, d, n),
        Prim::DecnetHost {
            ref off,
            dir: d,
            addr,
        } => net::decnet_host(off, d, addr),
        Prim::EtherHost {
            ref off,
            dir: d,
            mac,
        } => link::ether_host(off, d, mac),
        Prim::EtherBroadcast(ref off) => link::ether_host(off, Dir::Dst, [0xff; 6]),
        Prim::EtherMulticast(ref off) => link::ether_multicast(off),
        Prim::IpBroadcast { ref off, netmask } => net::ip_broadcast(off, netmask),
        Prim::IpMulticast { ref off, v6 } => net::ip_multicast(off, v6),
        Prim::Port {
            ref off,
            ref protos,
            dir: d,
            ref ranges,
        } => net::port(off, protos, d, ranges),
        Prim::Vlan { ref off, id } => link::vlan(off, id),
        Prim::Mpls { ref off, label } => link::mpls(off, label),
        Prim::Pppoes { ref off, session } => link::pppoes(off, session),
        Prim::Tunnel {
            ref off,
            kind,
            vni,
            regs,
        } => link::tunnel(off, kind, vni, regs),
        Prim::Llc(ref off, llc) => link::llc(off, llc),
        Prim::Outbound(out) => link::outbound(out),
    }
}

/// Why code generation failed (reported at column 1: the whole expression).
pub(crate) type GenError = String;

/// Lowers `e`; arithmetic may use the scratch words from `scratch` on.
fn lower(e: &Expr, scratch: u32) -> Result<Cond, GenError> {
    Ok(match e {
        Expr::True => Cond::Const(true),
        Expr::And(v) => {
            let mut c = Cond::Const(true);
            for x in v {
                c = and(c, lower(x, scratch)?);
            }
            c
        }
        Expr::Or(v) => {
            let mut c = Cond::Const(false);
            for x in v {
                c = or(c, lower(x, scratch)?);
            }
            c
        }
        Expr::Not(a) => not(lower(a, scratch)?),
        Expr::Prim(p) => prim(p),
        Expr::Rel(op, l, r) => arith::relation(*op, l, r, scratch)?,
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

/// The longest program laid out and handed to the optimizer: beyond this many instructions
/// (the kernel runs at most [`BPF_MAXINSNS`]) the filter is refused at once.
pub(super) const MAX_LAYOUT: usize = 4 * BPF_MAXINSNS;

impl Layout {
    pub(super) fn label(&mut self) -> Label {
        self.labels.push(None);
        self.labels.len() - 1
    }

    /// Binds `l` to the next slot pushed.
    pub(super) fn bind(&mut self, l: Label) {
        self.labels[l] = Some(self.slots.len());
    }

    /// Lays `c` out: jumps to `t` when it holds, to `f` when not. Recurses as deep as `c`
    /// nests.
    fn gen(&mut self, c: &Cond, t: Label, f: Label) {
        match c {
            Cond::Const(true) => self.slots.push(Slot::Ja(t)),
            Cond::Const(false) => self.slots.push(Slot::Ja(f)),
            Cond::Not(x) => self.gen(x, f, t),
            Cond::And(v) | Cond::Or(v) => {
                let is_and = matches!(c, Cond::And(_));
                for (i, x) in v.iter().enumerate() {
                    if i + 1 == v.len() {
                        self.gen(x, t, f);
                    } else {
                        let m = self.label();
                        if is_and {
                            self.gen(x, m, f);
                        } else {
                            self.gen(x, t, m);
                        }
                        self.bind(m);
                    }
                }
                if v.is_empty() {
                    self.slots.push(Slot::Ja(if is_and { t } else { f }));
                }
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

    /// Drops every `ja` to the very next slot (in passes: dropping one can make another one
    /// jump to its next slot).
    fn drop_next_jumps(&mut self) {
        loop {
            let n = self.slots.len();
            // Where each old slot index lands; `n` maps past the end.
            let mut at_label: Vec<Vec<Label>> = vec![Vec::new(); n + 1];
            for (l, p) in self.labels.iter().enumerate() {
                if let Some(p) = *p {
                    at_label[p.min(n)].push(l);
                }
            }
            let mut keep = vec![true; n];
            let mut removed = false;
            for (i, s) in self.slots.iter().enumerate() {
                if let Slot::Ja(l) = *s {
                    if self.labels[l] == Some(i + 1) {
                        keep[i] = false;
                        removed = true;
                    }
                }
            }
            if !removed {
                return;
            }
            let mut slots = Vec::with_capacity(n);
            for (i, s) in self.slots.iter().enumerate() {
                for &l in &at_label[i] {
                    self.labels[l] = Some(slots.len());
                }
                if keep[i] {
                    slots.push(*s);
                }
            }
            for &l in &at_label[n] {
                self.labels[l] = Some(slots.len());
            }
            self.slots = slots;
        }
    }

    /// Resolves labels to offsets: drops jumps to the next slot, and routes conditional jumps
    /// longer than 255 through an inserted `ja`.
    ///
    /// # Errors
    /// The program is longer than `max` instructions.
    pub(super) fn finish_max(mut self, max: usize) -> Result<Vec<Insn>, GenError> {
        self.drop_next_jumps();
        let too_long = |n: usize| {
            format!(
                "the program needs {n} instructions, more than the kernel's {BPF_MAXINSNS} \
                 (simplify the filter: use 'portrange' or 'net' for runs of ports or addresses)"
            )
        };
        if self.slots.len() > max {
            return Err(too_long(self.slots.len()));
        }
        let mut from = 0;
        loop {
            let pos = |l: Label, labels: &[Option<usize>]| labels[l].unwrap_or(0);
            let mut far: Option<(usize, bool)> = None;
            for (i, s) in self.slots.iter().enumerate().skip(from) {
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
            if self.slots.len() >= max {
                return Err(too_long(self.slots.len() + 1));
            }
            // Inserting after `i` only lengthens jumps that cross it, all of which start
            // at or before `i`: earlier ones were fine and may now be far, so look again a
            // jump's reach before `i`.
            from = i.saturating_sub(256);
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
        Ok(insns)
    }

    /// [`Layout::finish_max`] with the kernel's limit, [`BPF_MAXINSNS`].
    ///
    /// # Errors
    /// The program is longer than the kernel accepts.
    pub(super) fn finish(self) -> Result<Vec<Insn>, GenError> {
        self.finish_max(BPF_MAXINSNS)
    }
}

/// Counts the instructions `c` lays out to, without the `ja`s of constants, stopping past
/// `limit`.
fn size(c: &Cond, limit: usize) -> usize {
    match c {
        Cond::Const(_) => 0,
        Cond::Not(x) => size(x, limit),
        Cond::And(v) | Cond::Or(v) => {
            let mut n = 0;
            for x in v {
                n += size(x, limit);
                if n > limit {
                    break;
                }
            }
            n
        }
        Cond::Test { pre, .. } => pre.len() + 1,
    }
}

/// Compiles `e` to a program whose accepting return value is `snaplen`; `regs` scratch words
/// (from 0) hold tunnel offsets, the rest are free for arithmetic.
///
/// # Errors
/// The program would be longer than the kernel's [`BPF_MAXINSNS`] instructions even after
/// optimization is allowed for (the optimizer runs after this), or arithmetic needs more
/// scratch memory than is left.
pub(crate) fn compile(e: &Expr, snaplen: u32, regs: u32) -> Result<Vec<Insn>, GenError> {
    let c = lower(&merge_ports(e), regs)?;
    match c {
        Cond::Const(true) => return Ok(vec![Insn::ret(snaplen)]),
        Cond::Const(false) => return Ok(vec![Insn::ret(0)]),
        _ => {}
    }
    let n = size(&c, MAX_LAYOUT);
    if n > MAX_LAYOUT {
        return Err(format!(
            "the program needs more than {MAX_LAYOUT} instructions before optimization, far \
             more than the kernel's {BPF_MAXINSNS} (simplify the filter: use 'portrange' or \
             'net' for runs of ports or addresses)"
        ));
    }
    let mut l = Layout::default();
    // The kernel refuses a program that may read a scratch word no instruction stored to
    // before: the tunnel offsets start out as 0 (what the interpreter reads there anyway).
    if regs > 0 {
        l.slots.push(Slot::Plain(Insn::stmt(BPF_LD | BPF_IMM, 0)));
        for r in 0..regs {
            l.slots.push(Slot::Plain(Insn::stmt(BPF_ST, r)));
        }
    }
    let accept = l.label();
    let reject = l.label();
    l.gen(&c, accept, reject);
    l.bind(accept);
    l.slots.push(Slot::Ret(snaplen));
    l.bind(reject);
    l.slots.push(Slot::Ret(0));
    let mut prog = l.finish_max(MAX_LAYOUT)?;
    // A packet load at 2 GiB or more fails on any real packet, so the run ends there with 0;
    // say so explicitly: the kernel reads such offsets as negative ones (`SKF_NET_OFF`,
    // `SKF_LL_OFF`, ancillary fields) and would go on. Same instruction count, same jumps.
    // (The packet-type load of `inbound`/`outbound` is the one ancillary load compiled.)
    for i in &mut prog {
        if is_packet_load(i.code) && i.k >= 1 << 31 && !link::is_pkttype_load(*i) {
            *i = Insn::ret(0);
        }
    }
    Ok(prog)
}
