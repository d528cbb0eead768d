//! A program as an AF_PACKET socket filter must be written to see what the capture delivers.
//!
//! Linux moves the outer 802.1Q/802.1ad tag of a received frame out of the packet bytes into
//! the skb's metadata before socket filters run; `recv`, `recv-batch` and `mmap` put it back
//! into the frames they hand out. A program written for frames with their tags in the bytes
//! (what [`gen`](super::gen) emits, what XDP and DPDK see, what a capture file holds) would then
//! match the wrong packets: `vlan` never, `ip` tagged IPv4 frames too.
//!
//! [`for_socket`] rewrites such a program so that, run by the kernel on the stripped frame, it
//! reads the frame *with the tag put back*: byte offsets from 16 on move back by 4, bytes 12 to
//! 15 come from the ancillary loads `vlan_tpid` and `vlan_tci`, `len` grows by 4. The result
//! branches once on `vlanp` (a tag in metadata) between the rewritten program and the original
//! (no tag in metadata: the bytes are the frame). The branch also checks that the tag's TPID is
//! 0x8100 or 0x88a8 (the kernel keeps no other in metadata), which lets the optimizer settle
//! the ethertype tests on it. So an expression matches the same frames on
//! every rung, and the same frames as `tcpdump -r` over the file fastpath wrote. (libpcap's own
//! live programs differ here: `ip` matches tagged frames there, and `vlan` is read from metadata
//! only for the first tag.)
//!
//! Loads touching bytes 12 to 15 at an offset known only at run time (`ether[x]`) dispatch on
//! the offset; none of the protocol primitives produce them.
//!
//! Packet offsets from 2 GiB on mean something else to the kernel: it reads them as negative
//! ones (`SKF_NET_OFF`, `SKF_LL_OFF`, the ancillary fields), and sums `x + k` wrap at 4 GiB.
//! Such a load fails on any real frame, so the program must reject there. Compiled programs
//! have no constant offset that large ([`gen`](super::gen) turns those loads into `ret #0`);
//! here a `[x + k]` load whose `x + k` may reach 2 GiB gets a test that rejects when it does
//! ([`run`] and the XDP translation reject such loads by themselves).

use super::cbpf::*;
use super::gen::{GenError, Label, Layout, Slot};

/// Bytes 12..16 of the frame as the capture delivers it: the tag's TPID and TCI.
const TAG: u32 = 12;
const TAG_END: u32 = 16;
/// Packet offsets from here on are negative ones to the kernel.
const HUGE: u32 = 1 << 31;

fn anc(n: u32) -> Insn {
    Insn::stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + n)
}

fn stmt(code: u16, k: u32) -> Slot {
    Slot::Plain(Insn::stmt(code, k))
}

/// `jeq #k, jt, jf`.
fn jeq(k: u32, jt: Label, jf: Label) -> Slot {
    Slot::Cond {
        code: BPF_JMP | BPF_JEQ | BPF_K,
        k,
        jt,
        jf,
    }
}

/// Two scratch words the original program leaves alone.
#[derive(Clone, Copy)]
struct Scratch {
    /// Where X is saved while a load is assembled.
    x: u32,
    /// Where the value is assembled.
    t: u32,
}

struct Rewriter {
    l: Layout,
    scratch: Option<Scratch>,
    /// The largest value X can hold when each instruction of the program runs.
    x_max: Vec<u32>,
}

impl Rewriter {
    fn scratch(&self) -> Result<Scratch, GenError> {
        self.scratch.ok_or_else(|| {
            "the filter uses all 16 scratch memory words; reading a VLAN tag the kernel moved \
             out of the frame needs 2 of them (simplify the expression)"
                .into()
        })
    }

    /// Byte `q` of the delivered frame into A.
    fn byte(&mut self, q: u32) {
        let s = &mut self.l.slots;
        match q {
            12 | 13 => s.push(Slot::Plain(anc(SKF_AD_VLAN_TPID))),
            14 | 15 => s.push(Slot::Plain(anc(SKF_AD_VLAN_TAG))),
            q if q < TAG => s.push(stmt(BPF_LD | BPF_B | BPF_ABS, q)),
            q => s.push(stmt(BPF_LD | BPF_B | BPF_ABS, q - 4)),
        }
        match q {
            12 | 14 => s.push(stmt(BPF_ALU | BPF_RSH | BPF_K, 8)),
            13 | 15 => s.push(stmt(BPF_ALU | BPF_AND | BPF_K, 0xff)),
            _ => {}
        }
    }

    /// `size` bytes at constant offset `v` of the delivered frame into A, big-endian, where
    /// some of them are tag bytes. Clobbers X and scratch word `t`.
    fn assemble(&mut self, v: u32, size: u32, sc: Scratch) {
        match (v, size) {
            (12, 2) => self.l.slots.push(Slot::Plain(anc(SKF_AD_VLAN_TPID))),
            (14, 2) => self.l.slots.push(Slot::Plain(anc(SKF_AD_VLAN_TAG))),
            _ => {
                for (i, q) in (v..v + size).enumerate() {
                    self.byte(q);
                    if i > 0 {
                        self.l.slots.push(stmt(BPF_MISC | BPF_TAX, 0));
                        self.l.slots.push(stmt(BPF_LD | BPF_MEM, sc.t));
                        self.l.slots.push(stmt(BPF_ALU | BPF_LSH | BPF_K, 8));
                        self.l.slots.push(stmt(BPF_ALU | BPF_OR | BPF_X, 0));
                    }
                    if i + 1 < size as usize {
                        self.l.slots.push(stmt(BPF_ST, sc.t));
                    }
                }
            }
        }
    }

    /// `ld{,h,b} [v]` on the delivered frame.
    fn load_abs(&mut self, code: u16, v: u32) -> Result<(), GenError> {
        let size = load_size(code);
        if v >= TAG_END {
            self.l.slots.push(stmt(code, v - 4));
        } else if v.saturating_add(size) <= TAG {
            self.l.slots.push(stmt(code, v));
        } else if matches!((v, size), (12, 2) | (14, 2)) {
            self.assemble(v, size, Scratch { x: 0, t: 0 });
        } else {
            let sc = self.scratch()?;
            self.l.slots.push(stmt(BPF_STX, sc.x));
            self.assemble(v, size, sc);
            self.l.slots.push(stmt(BPF_LDX | BPF_MEM, sc.x));
        }
        Ok(())
    }

    /// `ld{,h,b} [x + k]` on the delivered frame.
    fn load_ind(&mut self, code: u16, k: u32) -> Result<(), GenError> {
        if k >= TAG_END {
            // X is unsigned: the whole load lies past the tag.
            self.l.slots.push(stmt(code, k - 4));
            return Ok(());
        }
        // The offset is known only now: branch on it.
        let size = load_size(code);
        let sc = self.scratch()?;
        let end: Label = self.l.label();
        let past = self.l.label();
        self.l.slots.push(stmt(BPF_STX, sc.x));
        self.l.slots.push(stmt(BPF_MISC | BPF_TXA, 0));
        self.l.slots.push(stmt(BPF_ALU | BPF_ADD | BPF_K, k));
        let first_touching = (TAG + 1).saturating_sub(size);
        let mut cases = Vec::new();
        let mut next = self.l.label();
        self.l.slots.push(Slot::Cond {
            code: BPF_JMP | BPF_JGE | BPF_K,
            k: TAG_END,
            jt: past,
            jf: next,
        });
        for v in first_touching..TAG_END {
            let case = self.l.label();
            self.l.bind(next);
            next = self.l.label();
            self.l.slots.push(jeq(v, case, next));
            cases.push((v, case));
        }
        // Before the tag.
        self.l.bind(next);
        self.l.slots.push(stmt(BPF_MISC | BPF_TAX, 0));
        self.l.slots.push(stmt(code, 0));
        self.l.slots.push(Slot::Ja(end));
        // Past the tag.
        self.l.bind(past);
        self.l.slots.push(stmt(BPF_ALU | BPF_SUB | BPF_K, 4));
        self.l.slots.push(stmt(BPF_MISC | BPF_TAX, 0));
        self.l.slots.push(stmt(code, 0));
        self.l.slots.push(Slot::Ja(end));
        for (v, case) in cases {
            self.l.bind(case);
            self.assemble(v, size, sc);
            self.l.slots.push(Slot::Ja(end));
        }
        self.l.bind(end);
        self.l.slots.push(stmt(BPF_LDX | BPF_MEM, sc.x));
        Ok(())
    }

    /// `ldxb 4*([v]&0xf)` on the delivered frame.
    fn msh(&mut self, v: u32) -> Result<(), GenError> {
        let code = BPF_LDX | BPF_B | BPF_MSH;
        if v >= TAG_END {
            self.l.slots.push(stmt(code, v - 4));
        } else if v < TAG {
            self.l.slots.push(stmt(code, v));
        } else {
            let sc = self.scratch()?;
            self.l.slots.push(stmt(BPF_ST, sc.t));
            self.byte(v);
            self.l.slots.push(stmt(BPF_ALU | BPF_AND | BPF_K, 0xf));
            self.l.slots.push(stmt(BPF_ALU | BPF_LSH | BPF_K, 2));
            self.l.slots.push(stmt(BPF_MISC | BPF_TAX, 0));
            self.l.slots.push(stmt(BPF_LD | BPF_MEM, sc.t));
        }
        Ok(())
    }

    /// Rejects when `x + k` (without wrapping) reaches [`HUGE`]: where the kernel would read
    /// `[x + k]` at a negative offset, or at a small one after the sum wrapped. Clobbers A,
    /// which the load that follows sets.
    fn guard_ind(&mut self, k: u32) {
        let bad = self.l.label();
        let ok = self.l.label();
        self.l.slots.push(stmt(BPF_MISC | BPF_TXA, 0));
        let jge = |jt, jf| Slot::Cond {
            code: BPF_JMP | BPF_JGE | BPF_K,
            k: HUGE,
            jt,
            jf,
        };
        if k == 0 {
            self.l.slots.push(jge(bad, ok));
        } else {
            // With x below HUGE, x + k (k is below it too) cannot wrap.
            let sum = self.l.label();
            self.l.slots.push(jge(bad, sum));
            self.l.bind(sum);
            self.l.slots.push(stmt(BPF_ALU | BPF_ADD | BPF_K, k));
            self.l.slots.push(jge(bad, ok));
        }
        self.l.bind(bad);
        self.l.slots.push(Slot::Ret(0));
        self.l.bind(ok);
    }

    /// Appends `prog` with symbolic jumps; rewritten for the delivered frame when `tagged`.
    fn append(&mut self, prog: &[Insn], tagged: bool) -> Result<(), GenError> {
        let at: Vec<Label> = (0..prog.len()).map(|_| self.l.label()).collect();
        // A checked program jumps inside itself; anything else is an internal error.
        let target = |pc: usize| {
            at.get(pc)
                .copied()
                .ok_or_else(|| GenError::from("internal error: a jump past the program"))
        };
        for (pc, &i) in prog.iter().enumerate() {
            self.l.bind(at[pc]);
            let class = i.code & 0x07;
            let indirect = matches!(i.code, 0x40 | 0x48 | 0x50);
            if indirect && u64::from(self.x_max[pc]) + u64::from(i.k) >= u64::from(HUGE) {
                self.guard_ind(i.k);
            }
            match i.code {
                c if c == BPF_JMP | BPF_JA => {
                    self.l.slots.push(Slot::Ja(target(pc + 1 + i.k as usize)?));
                }
                c if class == BPF_JMP => self.l.slots.push(Slot::Cond {
                    code: c,
                    k: i.k,
                    jt: target(pc + 1 + usize::from(i.jt))?,
                    jf: target(pc + 1 + usize::from(i.jf))?,
                }),
                c if c == BPF_RET | BPF_K => self.l.slots.push(Slot::Ret(i.k)),
                // Ancillary loads read metadata, wherever the tag is.
                0x20 | 0x28 | 0x30 if tagged && i.k < SKF_AD_OFF => self.load_abs(i.code, i.k)?,
                0x40 | 0x48 | 0x50 if tagged => self.load_ind(i.code, i.k)?,
                0xb1 if tagged => self.msh(i.k)?,
                // ld #pktlen; ldx #pktlen
                0x80 if tagged => {
                    self.l.slots.push(Slot::Plain(i));
                    self.l.slots.push(stmt(BPF_ALU | BPF_ADD | BPF_K, 4));
                }
                0x81 if tagged => {
                    let sc = self.scratch()?;
                    self.l.slots.push(stmt(BPF_ST, sc.t));
                    self.l.slots.push(stmt(BPF_LD | BPF_W | BPF_LEN, 0));
                    self.l.slots.push(stmt(BPF_ALU | BPF_ADD | BPF_K, 4));
                    self.l.slots.push(stmt(BPF_MISC | BPF_TAX, 0));
                    self.l.slots.push(stmt(BPF_LD | BPF_MEM, sc.t));
                }
                _ => self.l.slots.push(Slot::Plain(i)),
            }
        }
        Ok(())
    }
}

/// Whether running `prog` on the frame with its tag or without could differ: it reads bytes
/// from 12 on, or the length.
fn reads_past_macs(prog: &[Insn]) -> bool {
    prog.iter().any(|i| match i.code {
        0x20 | 0x28 | 0x30 => i.k < SKF_AD_OFF && i.k.saturating_add(load_size(i.code)) > TAG,
        0x40 | 0x48 | 0x50 | 0x80 | 0x81 => true,
        0xb1 => i.k >= TAG,
        _ => false,
    })
}

/// The largest value X can hold when each instruction of `prog` runs (0 where none runs).
/// Classic programs jump only forward, so one pass in order sees every way in first.
fn x_bounds(prog: &[Insn]) -> Vec<u32> {
    let mut max: Vec<Option<u32>> = vec![None; prog.len()];
    if let Some(first) = max.first_mut() {
        *first = Some(0);
    }
    for (pc, &i) in prog.iter().enumerate() {
        let Some(x) = max[pc] else { continue };
        let after = match i.code {
            0x01 => i.k,
            0xb1 => 60,
            // tax, ldx M[k], ldx #pktlen: anything.
            0x07 | 0x61 | 0x81 => u32::MAX,
            _ => x,
        };
        for to in successors(i, pc) {
            if let Some(m) = max.get_mut(to) {
                *m = Some(m.map_or(after, |m| m.max(after)));
            }
        }
    }
    max.into_iter().map(|m| m.unwrap_or(0)).collect()
}

/// Whether `prog` reads ancillary fields other than the packet type (which compiled
/// expressions read for `inbound`/`outbound`): it is then already written for a socket.
fn reads_ancillary(prog: &[Insn]) -> bool {
    prog.iter()
        .any(|i| is_abs_load(i.code) && i.k >= SKF_AD_OFF && i.k != SKF_AD_OFF + SKF_AD_PKTTYPE)
}

/// `prog` (checked, written for frames with their tags in the bytes) as an AF_PACKET socket
/// filter: the same verdicts on the frames the capture delivers, tags put back, `[x + k]`
/// loads that may reach 2 GiB guarded (see [the module docs](self)). Returned unchanged when
/// it cannot tell the difference (it then has no `[x + k]` load) or already reads ancillary
/// fields.
///
/// # Errors
/// The result would exceed [`BPF_MAXINSNS`], or the program leaves fewer than 2 scratch words
/// free where the rewrite needs them.
pub(crate) fn for_socket(prog: &[Insn]) -> Result<Vec<Insn>, GenError> {
    if !reads_past_macs(prog) || reads_ancillary(prog) {
        return Ok(prog.to_vec());
    }
    let mut used = [false; BPF_MEMWORDS as usize];
    for &i in prog {
        if let Some(u) = mem_index(i).and_then(|k| used.get_mut(k as usize)) {
            *u = true;
        }
    }
    let mut free = (0..BPF_MEMWORDS).rev().filter(|&m| !used[m as usize]);
    let scratch = match (free.next(), free.next()) {
        (Some(x), Some(t)) => Some(Scratch { x, t }),
        _ => None,
    };
    let mut r = Rewriter {
        l: Layout::default(),
        scratch,
        x_max: x_bounds(prog),
    };
    let tagged = r.l.label();
    let plain = r.l.label();
    let guard = r.l.label();
    let guard2 = r.l.label();
    r.l.slots.push(Slot::Plain(anc(SKF_AD_VLAN_TAG_PRESENT)));
    r.l.slots.push(jeq(1, guard, plain));
    // The kernel only keeps 802.1Q and 802.1ad tags in metadata (`skb_vlan_untag`, drivers,
    // `vlan` devices, tc and bpf_skb_vlan_push all insist). Saying so lets the optimizer decide
    // every other ethertype test on the tag's bytes at compile time.
    r.l.bind(guard);
    r.l.slots.push(Slot::Plain(anc(SKF_AD_VLAN_TPID)));
    r.l.slots.push(jeq(0x8100, tagged, guard2));
    r.l.bind(guard2);
    r.l.slots.push(jeq(0x88a8, tagged, plain));
    r.l.bind(plain);
    r.append(prog, false)?;
    r.l.bind(tagged);
    r.append(prog, true)?;
    let out = r.l.finish().map_err(|e| {
        format!("{e} (its AF_PACKET form reads a VLAN tag the kernel moved out of the frame)")
    })?;
    debug_assert!(check(&out).is_ok(), "rewritten programs pass the checker");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves the outer tag of `frame` (if 802.1Q/802.1ad) to metadata, as the kernel does.
    fn strip(frame: &[u8]) -> (Vec<u8>, Option<VlanTag>) {
        let tpid = u16::from_be_bytes([frame[12], frame[13]]);
        if tpid != 0x8100 && tpid != 0x88a8 {
            return (frame.to_vec(), None);
        }
        let tci = u16::from_be_bytes([frame[14], frame[15]]);
        let mut f = frame[..12].to_vec();
        f.extend_from_slice(&frame[16..]);
        (f, Some(VlanTag { tpid, tci }))
    }

    fn agree(prog: &[Insn], frame: &[u8]) {
        let sock = for_socket(prog).unwrap();
        let (stripped, tag) = strip(frame);
        let want = run(prog, frame, frame.len() as u32);
        let got = run_with_vlan(&sock, &stripped, stripped.len() as u32, tag);
        assert_eq!(
            want,
            got,
            "{}\non {frame:02x?}\nsocket form:\n{}",
            Listing(prog),
            Listing(&sock)
        );
    }

    fn tagged_udp(tpid: u16, tci: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa];
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        f
    }

    /// Every load shape at every offset around the tag, constant and through X.
    #[test]
    fn raw_loads_around_the_tag_agree() {
        let frames = [
            tagged_udp(0x8100, 0x2064),
            tagged_udp(0x88a8, 0x0fff),
            tagged_udp(0x9100, 5),
            tagged_udp(0x0800, 0)[..30].to_vec(),
            {
                let mut f = tagged_udp(0x8100, 7);
                f.truncate(17);
                f
            },
        ];
        for code in [0x20u16, 0x28, 0x30] {
            for k in 0..24 {
                // ld [k]; ret a (+1 so a zero value still accepts)
                let abs = [
                    Insn::stmt(code, k),
                    Insn::stmt(BPF_ALU | BPF_ADD | BPF_K, 1),
                    Insn::stmt(BPF_RET | BPF_A, 0),
                ];
                let ind = [
                    Insn::stmt(BPF_LDX | BPF_IMM, k % 5),
                    Insn::stmt(code + 0x20, k - k % 5),
                    Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
                    Insn::stmt(BPF_RET | BPF_A, 0),
                ];
                let msh = [
                    Insn::stmt(BPF_LD | BPF_IMM, 7),
                    Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, k),
                    Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
                    Insn::stmt(BPF_RET | BPF_A, 0),
                ];
                let len = [
                    Insn::stmt(BPF_LDX | BPF_W | BPF_LEN, 0),
                    Insn::stmt(BPF_LD | BPF_W | BPF_LEN, 0),
                    Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
                    Insn::stmt(BPF_RET | BPF_A, 0),
                ];
                for f in &frames {
                    agree(&abs, f);
                    agree(&ind, f);
                    agree(&msh, f);
                    agree(&len, f);
                }
            }
        }
    }

    #[test]
    fn untouched_when_nothing_past_the_macs_is_read() {
        let p = [
            Insn::stmt(BPF_LD | BPF_W | BPF_ABS, 8),
            Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 0xa, 0, 1),
            Insn::ret(1),
            Insn::ret(0),
        ];
        assert_eq!(for_socket(&p).unwrap(), p);
        let anc = [Insn::stmt(0x30, SKF_AD_OFF + 48), Insn::stmt(0x16, 0)];
        assert_eq!(for_socket(&anc).unwrap(), anc);
    }

    /// `[x + k]` is guarded exactly where x + k may reach 2 GiB.
    #[test]
    fn indirect_loads_guarded_only_when_they_may_reach_2_gib() {
        let ind = |ldx: Insn, k: u32| {
            let p = [ldx, Insn::stmt(0x50, k), Insn::stmt(BPF_RET | BPF_A, 0)];
            for_socket(&p).unwrap()
        };
        let msh = Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, 14);
        let guarded = |p: &[Insn]| {
            p.iter()
                .any(|i| i.code == BPF_JMP | BPF_JGE | BPF_K && i.k == HUGE)
        };
        assert!(!guarded(&ind(msh, 20)));
        assert!(guarded(&ind(msh, HUGE - 60)));
        assert!(!guarded(&ind(Insn::stmt(BPF_LDX | BPF_IMM, 5), 20)));
        assert!(guarded(&ind(Insn::stmt(BPF_MISC | BPF_TAX, 0), 20)));
        // x = 0xfffffff0: x + 20 wraps to 4 in the kernel's 32-bit sum; rejected instead.
        let p = [
            Insn::stmt(BPF_LD | BPF_IMM, 0xffff_fff0),
            Insn::stmt(BPF_MISC | BPF_TAX, 0),
            Insn::stmt(0x50, 20),
            Insn::stmt(BPF_RET | BPF_A, 0),
        ];
        let sock = for_socket(&p).unwrap();
        let f = tagged_udp(0x0800, 0x4500);
        assert_eq!(run(&sock, &f, f.len() as u32), 0, "{}", Listing(&sock));
        let mut widest = 0;
        run_traced(&sock, &f, f.len() as u32, None, |code, off| {
            if code & 0xe0 == BPF_IND {
                widest = widest.max(off);
            }
        });
        assert!(widest < u64::from(HUGE), "{}", Listing(&sock));
    }

    #[test]
    fn scratch_exhaustion_is_an_error() {
        let mut p: Vec<Insn> = (0..16).map(|m| Insn::stmt(BPF_ST, m)).collect();
        p.push(Insn::stmt(0x48, 2)); // ldh [x + 2]: may touch the tag
        p.push(Insn::stmt(BPF_RET | BPF_A, 0));
        let e = for_socket(&p).unwrap_err();
        assert!(e.contains("scratch"), "{e}");
    }
}
