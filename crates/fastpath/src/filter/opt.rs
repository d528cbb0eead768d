//! A small optimizer for the programs fastpath compiles: drops reloads of a value A or X
//! already holds, threads jumps whose outcome an earlier test on the path decides (also past a
//! reload of a field tested before, when nothing reads A where the jump lands), and drops code
//! no path reaches. Every packet gets the same verdict; fewer instructions run per packet (in the
//! kernel for every packet a socket filter sees).
//!
//! One forward pass per round (classic BPF only jumps forward, so every predecessor of an
//! instruction comes before it), rounds until nothing changes. Programs given as raw
//! instructions are never optimized: they run as given.

use super::cbpf::*;
use super::gen::{GenError, Layout, Slot};

/// What a register is known to hold: the value the instruction `(code, k)` loaded (packet
/// bytes, metadata, the length or a constant), or nothing known.
type Known = Option<(u16, u32)>;

/// How many facts about loaded fields a path remembers.
const FACTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    a: Known,
    x: Known,
    /// What the tests on the path say about fields loaded before (packet bytes and metadata do
    /// not change during a run, so these stay true).
    facts: [Option<((u16, u32), Fact)>; FACTS],
}

impl State {
    const UNKNOWN: State = State {
        a: None,
        x: None,
        facts: [None; FACTS],
    };

    /// What both paths agree on.
    fn meet(self, o: State) -> State {
        let mut facts = self.facts;
        for f in &mut facts {
            let Some((key, mine)) = *f else { continue };
            *f = match (mine, o.fact(key)) {
                (m, Some(theirs)) if m == theirs => Some((key, m)),
                (Fact::Eq(a), Some(Fact::Eq(b))) => Some((key, Fact::OneOf(a, b))),
                _ => None,
            };
        }
        State {
            a: if self.a == o.a { self.a } else { None },
            x: if self.x == o.x { self.x } else { None },
            facts,
        }
    }

    fn fact(&self, key: (u16, u32)) -> Option<Fact> {
        self.facts
            .iter()
            .flatten()
            .find(|(k, _)| *k == key)
            .map(|&(_, f)| f)
    }

    /// `self` on the edge where `fact` holds of A.
    fn learn(mut self, fact: Option<Fact>) -> State {
        let (Some(key), Some(fact)) = (self.a, fact) else {
            return self;
        };
        let fact = match (self.fact(key), fact) {
            // An exact value known already is the stronger fact.
            (Some(old @ Fact::Eq(_)), _) => old,
            (Some(Fact::OneOf(a, b)), new) => match (holds(new, a), holds(new, b)) {
                (true, true) => Fact::OneOf(a, b),
                (true, false) => Fact::Eq(a),
                (false, true) => Fact::Eq(b),
                (false, false) => new, // no packet takes this path
            },
            (Some(Fact::Range(a, b)), Fact::Range(c, d)) if a.max(c) <= b.min(d) => {
                Fact::Range(a.max(c), b.min(d))
            }
            _ => fact,
        };
        self.facts.iter_mut().for_each(|f| {
            if f.is_some_and(|(k, _)| k == key) {
                *f = None;
            }
        });
        match self.facts.iter_mut().find(|f| f.is_none()) {
            Some(free) => *free = Some((key, fact)),
            None => {
                self.facts.rotate_left(1);
                self.facts[FACTS - 1] = Some((key, fact));
            }
        }
        self
    }
}

/// What a taken or not-taken conditional jump says about A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Eq(u32),
    Ne(u32),
    /// `lo <= A <= hi`.
    Range(u32, u32),
    /// `A & m == 0`.
    Clear(u32),
    /// `A & m != 0`.
    AnySet(u32),
    /// A is one of the two (paths that knew each value met).
    OneOf(u32, u32),
}

/// Whether `v` satisfies `f`.
fn holds(f: Fact, v: u32) -> bool {
    match f {
        Fact::Eq(x) => v == x,
        Fact::Ne(x) => v != x,
        Fact::Range(lo, hi) => (lo..=hi).contains(&v),
        Fact::Clear(m) => v & m == 0,
        Fact::AnySet(m) => v & m != 0,
        Fact::OneOf(a, b) => v == a || v == b,
    }
}

fn facts(code: u16, k: u32) -> Option<(Fact, Fact)> {
    Some(match code {
        c if c == BPF_JMP | BPF_JEQ | BPF_K => (Fact::Eq(k), Fact::Ne(k)),
        c if c == BPF_JMP | BPF_JGT | BPF_K => {
            (Fact::Range(k.checked_add(1)?, u32::MAX), Fact::Range(0, k))
        }
        c if c == BPF_JMP | BPF_JGE | BPF_K => {
            (Fact::Range(k, u32::MAX), Fact::Range(0, k.checked_sub(1)?))
        }
        c if c == BPF_JMP | BPF_JSET | BPF_K => (Fact::AnySet(k), Fact::Clear(k)),
        _ => return None,
    })
}

/// The outcome of `A <code> k` when `fact` holds, if it decides it.
fn decide(fact: Fact, code: u16, k: u32) -> Option<bool> {
    let op = code & 0xf0;
    if code & 0x07 != BPF_JMP || code & BPF_X != 0 || op == BPF_JA {
        return None;
    }
    match fact {
        Fact::Eq(v) => Some(match op {
            BPF_JEQ => v == k,
            BPF_JGT => v > k,
            BPF_JGE => v >= k,
            BPF_JSET => v & k != 0,
            _ => return None,
        }),
        Fact::Ne(v) => (op == BPF_JEQ && v == k).then_some(false),
        Fact::Range(lo, hi) => match op {
            BPF_JEQ if k < lo || k > hi => Some(false),
            BPF_JGT if lo > k => Some(true),
            BPF_JGT if hi <= k => Some(false),
            BPF_JGE if lo >= k => Some(true),
            BPF_JGE if hi < k => Some(false),
            _ => None,
        },
        Fact::Clear(m) => (op == BPF_JSET && k & !m == 0).then_some(false),
        Fact::AnySet(m) => (op == BPF_JSET && m & !k == 0).then_some(true),
        Fact::OneOf(a, b) => {
            let (x, y) = (decide(Fact::Eq(a), code, k)?, decide(Fact::Eq(b), code, k)?);
            (x == y).then_some(x)
        }
    }
}

/// Whether `ld{,h,b} [k]` reads the same value each time in one run: packet bytes and the
/// metadata ancillary loads, not `random` or `xor_x` (which computes `A ^= X`).
fn pure_abs(k: u32) -> bool {
    k < SKF_AD_OFF || !matches!(k - SKF_AD_OFF, SKF_AD_ALU_XOR_X | SKF_AD_RANDOM)
}

/// The register an instruction loads with a value that depends only on the packet and `k`,
/// if it is one: `Some(true)` for A, `Some(false)` for X.
fn plain_load(i: Insn) -> Option<bool> {
    match i.code {
        0x20 | 0x28 | 0x30 if pure_abs(i.k) => Some(true),
        0x00 | 0x80 => Some(true),
        0x01 | 0x81 | 0xb1 => Some(false),
        _ => None,
    }
}

/// The state after `i` runs in `s` (jumps and returns leave it).
fn step(i: Insn, s: State) -> State {
    let key = Some((i.code, i.k));
    match plain_load(i) {
        Some(true) => return State { a: key, ..s },
        Some(false) => return State { x: key, ..s },
        None => {}
    }
    match i.code & 0x07 {
        BPF_LD | BPF_ALU => State { a: None, ..s },
        BPF_LDX => State { x: None, ..s },
        BPF_MISC if i.code == BPF_MISC | BPF_TAX => State { x: None, ..s },
        BPF_MISC => State { a: None, ..s },
        _ => s,
    }
}

/// Whether `i` in state `s` changes nothing: it reloads what the register holds.
fn no_op(i: Insn, s: State) -> bool {
    match plain_load(i) {
        Some(true) => s.a == Some((i.code, i.k)),
        Some(false) => s.x == Some((i.code, i.k)),
        None => false,
    }
}

/// Whether instruction `i` reads A.
fn reads_a(i: Insn) -> bool {
    match i.code & 0x07 {
        BPF_ALU | BPF_ST => true,
        BPF_JMP => i.code != BPF_JMP | BPF_JA,
        BPF_RET => i.code & 0x18 == BPF_A,
        BPF_MISC => i.code == BPF_MISC | BPF_TAX,
        // `ld [xor_x]` computes A ^ X.
        BPF_LD => is_abs_load(i.code) && i.k == SKF_AD_OFF + SKF_AD_ALU_XOR_X,
        _ => false,
    }
}

/// Whether instruction `i` sets A without reading it.
fn writes_a(i: Insn) -> bool {
    (i.code & 0x07 == BPF_LD && !reads_a(i)) || i.code == BPF_MISC | BPF_TXA
}

/// For each instruction, whether some path from it reads A before setting it (`live[n]`, past
/// the end, is false). One backward pass: jumps only go forward.
fn a_live(prog: &[Insn]) -> Vec<bool> {
    let n = prog.len();
    let mut live = vec![false; n + 1];
    for pc in (0..n).rev() {
        let i = prog[pc];
        let out = successors(i, pc).any(|t| live.get(t).copied().unwrap_or(false));
        live[pc] = reads_a(i) || (!writes_a(i) && out);
    }
    live
}

/// Where a jump to `t` in state `s`, with `fact` known about A, really goes on: past reloads
/// that change nothing, `ja`s, conditional jumps the fact decides, and a reload of a field the
/// path has tested followed by a test that decides, when A is not read where that test leads
/// (A then keeps its value along the new edge, which is what `s` says).
fn thread(prog: &[Insn], live: &[bool], mut t: usize, s: State, fact: Option<Fact>) -> usize {
    // What is known of A: the edge's own fact, or what the path learned of the field in A.
    let fact = s.a.and_then(|k| s.fact(k)).or(fact);
    // Each step moves forward, so this ends.
    while let Some(&i) = prog.get(t) {
        if no_op(i, s) {
            t += 1;
        } else if i.code == BPF_JMP | BPF_JA {
            t += 1 + i.k as usize;
        } else if let Some(taken) = fact.and_then(|f| decide(f, i.code, i.k)) {
            t += 1 + usize::from(if taken { i.jt } else { i.jf });
        } else if let (Some(true), Some(&j)) = (plain_load(i), prog.get(t + 1)) {
            let Some(taken) = s.fact((i.code, i.k)).and_then(|f| decide(f, j.code, j.k)) else {
                break;
            };
            let to = t + 2 + usize::from(if taken { j.jt } else { j.jf });
            if live.get(to).copied().unwrap_or(true) {
                break;
            }
            t = to;
        } else {
            break;
        }
    }
    t
}

/// One round. `None` when it changes nothing.
fn round(prog: &[Insn]) -> Result<Option<Vec<Insn>>, GenError> {
    let n = prog.len();
    let mut state: Vec<Option<State>> = vec![None; n];
    let mut keep = vec![true; n];
    let mut jumps: Vec<(usize, usize)> = vec![(0, 0); n];
    let mut changed = false;
    if n == 0 {
        return Ok(None);
    }
    state[0] = Some(State::UNKNOWN);
    let live = a_live(prog);
    let reach = |state: &mut Vec<Option<State>>, t: usize, s: State| {
        if let Some(slot) = state.get_mut(t) {
            *slot = Some(slot.map_or(s, |o| o.meet(s)));
        }
    };
    for pc in 0..n {
        let i = prog[pc];
        let Some(s) = state[pc] else {
            keep[pc] = false; // unreachable
            changed = true;
            continue;
        };
        if no_op(i, s) {
            keep[pc] = false;
            changed = true;
            reach(&mut state, pc + 1, s);
            continue;
        }
        let class = i.code & 0x07;
        if class == BPF_RET {
            continue;
        }
        if class != BPF_JMP {
            reach(&mut state, pc + 1, step(i, s));
            continue;
        }
        let (ft, ff) = match facts(i.code, i.k) {
            Some((t, f)) => (Some(t), Some(f)),
            None => (None, None),
        };
        let (t0, f0) = if i.code == BPF_JMP | BPF_JA {
            let t = pc + 1 + i.k as usize;
            (t, t)
        } else {
            (pc + 1 + usize::from(i.jt), pc + 1 + usize::from(i.jf))
        };
        let (st, sf) = (s.learn(ft), s.learn(ff));
        let (t, f) = (
            thread(prog, &live, t0, st, ft),
            thread(prog, &live, f0, sf, ff),
        );
        changed |= (t, f) != (t0, f0);
        jumps[pc] = (t, f);
        reach(&mut state, t, st);
        reach(&mut state, f, sf);
    }
    if !changed {
        return Ok(None);
    }
    let mut l = Layout::default();
    let at: Vec<usize> = (0..=n).map(|_| l.label()).collect();
    for pc in 0..n {
        l.bind(at[pc]);
        if !keep[pc] {
            continue;
        }
        let i = prog[pc];
        let (t, f) = jumps[pc];
        l.slots.push(match i.code {
            c if c == BPF_RET | BPF_K => Slot::Ret(i.k),
            c if c == BPF_JMP | BPF_JA => Slot::Ja(at[t.min(n)]),
            c if c & 0x07 == BPF_JMP && t == f => Slot::Ja(at[t.min(n)]),
            c if c & 0x07 == BPF_JMP => Slot::Cond {
                code: c,
                k: i.k,
                jt: at[t.min(n)],
                jf: at[f.min(n)],
            },
            _ => Slot::Plain(i),
        });
    }
    // A checked program ends in a return: nothing jumps to `at[n]`.
    l.bind(at[n]);
    l.finish_max(super::gen::MAX_LAYOUT).map(Some)
}

/// `prog` (checked, but for its length, which may reach [`MAX_LAYOUT`](super::gen::MAX_LAYOUT))
/// with the same verdict on every packet, usually shorter.
///
/// # Errors
/// Only if a rewritten jump layout would exceed that length (it never grows in practice).
pub(crate) fn optimize(prog: Vec<Insn>) -> Result<Vec<Insn>, GenError> {
    let mut prog = prog;
    // Each round removes or shortens something; a handful suffices for any real program.
    for _ in 0..16 {
        match round(&prog)? {
            Some(p) => prog = p,
            None => break,
        }
    }
    debug_assert!(
        prog.len() > BPF_MAXINSNS || check(&prog).is_ok(),
        "optimized programs pass the checker"
    );
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_go_and_decided_jumps_are_threaded() {
        // ldh [12]; jeq 0x800 -> L1 else L2; L1: ldh [12]; jeq 0x86dd (never) ...
        let p = vec![
            Insn::stmt(BPF_LD | BPF_H | BPF_ABS, 12),
            Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 0x800, 0, 3),
            Insn::stmt(BPF_LD | BPF_H | BPF_ABS, 12),
            Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 0x86dd, 2, 3),
            Insn::stmt(BPF_LD | BPF_H | BPF_ABS, 12),
            Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 0x806, 0, 1),
            Insn::ret(1),
            Insn::ret(0),
        ];
        let o = optimize(p.clone()).unwrap();
        assert!(o.len() < p.len(), "{}", Listing(&o));
        for et in [0x800u16, 0x86dd, 0x806, 0x1234] {
            let mut f = vec![0u8; 14];
            f[12..14].copy_from_slice(&et.to_be_bytes());
            assert_eq!(run(&p, &f, 14), run(&o, &f, 14), "{et:#x}\n{}", Listing(&o));
        }
    }

    /// Random combinations of primitives over random mutations of a few frames: the optimized
    /// program's verdict equals the unoptimized one's, for the offline and the socket form.
    #[test]
    fn same_verdicts_as_unoptimized() {
        const PRIMS: &[&str] = &[
            "ip",
            "ip6",
            "arp",
            "tcp",
            "udp",
            "icmp",
            "vlan",
            "vlan 100",
            "port 53",
            "src port 1024",
            "tcp port 80",
            "portrange 10-2000",
            "host 10.0.0.1",
            "net 10.0.0.0/8",
            "dst host 10.0.0.2",
            "ip6 host ::1",
            "ether broadcast",
            "ether src 2:0:0:0:0:a",
            "len > 60",
            "less 100",
            "ip proto 17",
            "tcp[tcpflags] & tcp-syn != 0",
            "ip[0] & 0xf != 5",
            "udp[8:2] = 0x1234",
            "ether[12:2] = 0x8100",
            "ether[14] & 0xf0 = 0x40",
            "icmp[icmptype] = 8",
            "ip[6:2] & 0x1fff = 0",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut udp = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x08, 0x00];
        udp.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1]);
        udp.extend_from_slice(&[10, 0, 0, 2, 0x04, 0x00, 0, 53, 0, 20, 0, 0, 0x12, 0x34]);
        udp.extend_from_slice(&[0; 10]);
        let mut tagged = udp[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0, 0, 100]);
        tagged.extend_from_slice(&udp[12..]);
        let mut tcp = udp.clone();
        tcp[23] = 6;
        tcp[47] = 0x02;
        let mut v6 = udp[..12].to_vec();
        v6.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64]);
        v6.extend_from_slice(&[0; 31]);
        v6.push(1);
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
        let templates = [udp, tagged, tcp, v6];
        let mut frames = Vec::new();
        for _ in 0..400 {
            let mut f = templates[rnd(templates.len())].clone();
            for _ in 0..rnd(4) {
                let at = 12 + rnd(f.len() - 12);
                f[at] = [0u8, 0x81, 0x86, 0x08, 0x45, 17, 6, 53, 0xff][rnd(9)];
            }
            if rnd(5) == 0 {
                f.truncate(14 + rnd(f.len() - 14));
            }
            frames.push(f);
        }
        let (mut checked, mut accepted) = (0, 0);
        for _ in 0..600 {
            let mut e = String::from(PRIMS[rnd(PRIMS.len())]);
            for _ in 0..rnd(5) {
                let p = PRIMS[rnd(PRIMS.len())];
                let not = if rnd(3) == 0 { "not " } else { "" };
                let op = if rnd(2) == 0 { "and" } else { "or" };
                e = if rnd(2) == 0 {
                    format!("({e}) {op} {not}{p}")
                } else {
                    format!("{not}{p} {op} ({e})")
                };
            }
            let (ast, regs) =
                super::super::parse::parse(&e, super::super::parse::Env::default()).unwrap();
            let plain = super::super::gen::compile(&ast, 0xffff, regs).unwrap();
            let opt = optimize(plain.clone()).unwrap();
            let sock_plain = super::super::socket::for_socket(&plain).unwrap();
            let sock_opt = optimize(sock_plain.clone()).unwrap();
            for (n, f) in frames.iter().enumerate() {
                let w = f.len() as u32;
                assert_eq!(run(&plain, f, w), run(&opt, f, w), "'{e}' on {f:02x?}");
                let tpid = [0x8100, 0x88a8][n % 2];
                let tag = Some(VlanTag { tpid, tci: 100 });
                assert_eq!(
                    run_with_vlan(&sock_plain, f, w, tag),
                    run_with_vlan(&sock_opt, f, w, tag),
                    "socket form of '{e}' on {f:02x?}"
                );
                checked += 1;
                accepted += usize::from(run(&opt, f, w) != 0);
            }
        }
        assert_eq!(checked, 600 * 400);
        // Both verdicts are common, or the comparison would prove little.
        assert!(
            (checked / 10..checked * 9 / 10).contains(&accepted),
            "{accepted} of {checked} accepted"
        );
    }

    #[test]
    fn random_and_xor_are_not_reloads() {
        let r = SKF_AD_OFF + SKF_AD_RANDOM;
        let p = vec![
            Insn::stmt(BPF_LD | BPF_W | BPF_ABS, r),
            Insn::stmt(BPF_LD | BPF_W | BPF_ABS, r),
            Insn::stmt(BPF_RET | BPF_A, 0),
        ];
        assert_eq!(optimize(p.clone()).unwrap(), p);
    }
}
