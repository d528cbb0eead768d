//! Parse, compile and run arbitrary filter expressions and `-ddd` program texts: nothing may
//! panic, every compiled program must pass the checker, the interpreter must survive any
//! packet, and the AF_PACKET form of a program, run on the frame as the kernel shows it to a
//! socket filter (outer 802.1Q/802.1ad tag moved to metadata), must give the verdict the
//! program gives on the frame itself. Run:
//! `cargo +nightly fuzz run filter_parse -- -max_total_time=30`.
#![no_main]

use fastpath::filter::{cbpf, Filter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte splits the input: the expression, then a packet to run it on.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize).min(rest.len());
    let (text, packet) = rest.split_at(cut);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(f) = Filter::new(text) {
        assert!(
            cbpf::check(f.insns()).is_ok(),
            "compiled program fails the checker"
        );
        let _ = f.run(packet, packet.len() as u32);
        let back = Filter::from_decimal(&f.decimal().to_string()).expect("-ddd round trip");
        assert_eq!(back.insns(), f.insns());
        if let Ok(sock) = f.socket_program() {
            assert!(cbpf::check(&sock).is_ok(), "socket form fails the checker");
            let want = f.run(packet, packet.len() as u32);
            let tpid = packet.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let got = match tpid {
                Some(tpid @ (0x8100 | 0x88a8)) if packet.len() >= 18 => {
                    let tci = u16::from_be_bytes([packet[14], packet[15]]);
                    let mut seen = packet[..12].to_vec();
                    seen.extend_from_slice(&packet[16..]);
                    let tag = Some(cbpf::VlanTag { tpid, tci });
                    cbpf::run_with_vlan(&sock, &seen, seen.len() as u32, tag)
                }
                _ => cbpf::run_with_vlan(&sock, packet, packet.len() as u32, None),
            };
            assert_eq!(got, want, "socket form disagrees");
        }
    }
    if let Ok(f) = Filter::from_decimal(text) {
        let _ = f.run(packet, packet.len() as u32);
        let _ = f.listing().to_string();
    }
    // Raw instructions straight from the bytes, unchecked: the interpreter must still not
    // panic.
    let prog: Vec<cbpf::Insn> = rest
        .chunks_exact(8)
        .map(|c| cbpf::Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let _ = cbpf::run(&prog, packet, packet.len() as u32);
});
