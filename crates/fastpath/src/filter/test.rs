//! Unit tests of the whole pipeline on hand-built frames. The differential tests against
//! libpcap are in `tests/filter.rs`.

use super::*;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, frag: u16, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 0];
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let total = (h.len() + l4.len()) as u16;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(l4);
    eth(0x0800, &h)
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 0x12, 0x34, 0, 0]);
    u
}

fn m(expr: &str, frame: &[u8]) -> bool {
    let f = Filter::new(expr).unwrap_or_else(|e| panic!("{e}"));
    f.matches(frame, frame.len() as u32)
}

#[test]
fn basic_verdicts() {
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    assert!(m("udp and dst port 53", &dns));
    assert!(m("udp port domain", &dns));
    assert!(!m("tcp", &dns));
    assert!(m("host 10.0.0.2 and not host 10.0.0.3", &dns));
    assert!(m("src net 10.0.0.0/8", &dns));
    assert!(!m("dst net 10.0.0.0/31", &dns));
    assert!(m("udp[8:2] = 0x1234", &dns));
    assert!(m("ip[0] & 0xf = 5", &dns));
    assert!(m("portrange 50-60", &dns));
    assert!(m("greater 40 and less 100", &dns));
    assert!(m("ether src 2:0:0:0:0:1", &dns));
    assert!(m("ether broadcast", &dns));
    assert!(m("", &dns));
    assert!(!m("vlan", &dns));
    // Not the first fragment: no ports.
    let frag = ipv4(17, 0x0010, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    assert!(!m("port 53", &frag));
    assert!(m("udp", &frag));
}

#[test]
fn long_programs_use_trampolines() {
    let expr = (0..150)
        .map(|i| format!("host 10.0.{}.{}", i / 200, i % 200))
        .collect::<Vec<_>>()
        .join(" or ");
    let f = Filter::new(&expr).unwrap();
    assert!(f.insns().len() > 256);
    cbpf::check(f.insns()).unwrap();
    let hit = ipv4(6, 0, [10, 0, 0, 149], [1, 1, 1, 1], &[0; 20]);
    let miss = ipv4(6, 0, [10, 0, 1, 149], [1, 1, 1, 1], &[0; 20]);
    assert!(f.matches(&hit, hit.len() as u32));
    assert!(!f.matches(&miss, miss.len() as u32));
}

#[test]
fn error_display_has_a_caret() {
    let e = Filter::new("tcp and port foo").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error at column 14: expected a port number after 'port', found 'foo' (not a known \
         service name)\n  tcp and port foo\n               ^"
    );
    let e = Filter::new("ip[0] / 0 = 1").unwrap_err();
    assert_eq!(e.column, 0);
    assert!(e.to_string().contains("division by zero"));
}

#[test]
fn decimal_round_trip() {
    let f = Filter::new("tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn").unwrap();
    let back = Filter::from_decimal(&f.decimal().to_string()).unwrap();
    assert_eq!(back.insns(), f.insns());
}

#[test]
fn clamped_lowers_accept_values() {
    let f = Filter::new("ip").unwrap();
    let c = f.clamped(96);
    assert!(c.iter().any(|i| *i == Insn::ret(96)));
    assert!(c.iter().any(|i| *i == Insn::ret(0)));
}

/// Offsets the kernel would read as negative (network/link-layer relative, ancillary) are
/// out-of-bounds loads like any other: the program rejects there, in every form.
#[test]
fn huge_offsets_reject_in_every_form() {
    use super::cbpf::{SKF_AD_OFF, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID};
    // The socket form's own metadata reads are the only loads allowed up there.
    let ours = [SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID].map(|n| SKF_AD_OFF + n);
    for expr in [
        "ether[4294963248] = 1",
        "ether[0x80000000:2] = 0",
        "ether[0x80000000 + ether[0]] = 0",
        "not ether[4294963248] = 1",
        "ip or ether[0xfffff030] = 1",
    ] {
        let f = Filter::new(expr).unwrap();
        for p in [f.insns().to_vec(), f.socket_program().unwrap()] {
            let bad = p.iter().find(|i| {
                super::cbpf::is_packet_load(i.code) && i.k >= 1 << 31 && !ours.contains(&i.k)
            });
            assert!(bad.is_none(), "'{expr}':\n{}", super::cbpf::Listing(&p));
            assert_eq!(super::cbpf::run(&p, &[0u8; 64], 64), 0, "'{expr}'");
        }
    }
}

/// Run by the interpreter, the socket form of an expression never reads at 2 GiB or more (where
/// the kernel would read a negative offset, or a small one after `x + k` wrapped) but for its
/// own VLAN metadata loads, whether the frame's tag is in metadata or not.
#[test]
fn socket_form_never_loads_at_2_gib() {
    use super::cbpf::{
        is_abs_load, run_traced, VlanTag, SKF_AD_OFF, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT,
        SKF_AD_VLAN_TPID,
    };
    let ours = [SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID].map(|n| SKF_AD_OFF + n);
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    let tag = VlanTag {
        tpid: 0x8100,
        tci: 7,
    };
    for expr in [
        "ether[4294963248] = 1",
        "ether[0x80000000 + ether[0]] = 0",
        // 0xfffffffa + 14 wraps to 8 in the kernel's 32-bit sum.
        "ip[0xfffffff8 + ether[6]] = 2",
        "ip[ip[0] * 0x1000000] = 0",
        "udp[0x7ffffff0] = 0",
        "udp[0x7ffffff0 + ether[6]] = 0",
        "tcp[ether[6] * 0x7fffffff] = 0",
        "vlan and ip[ether[6] + 0x7fffffe0] = 0",
        "ip or ether[0xfffff030] = 1",
        "udp port 53 and ip[ip[0] & 0xf] = 0",
    ] {
        let f = Filter::new(expr).unwrap();
        let sock = f.socket_program().unwrap();
        for vlan in [None, Some(tag)] {
            let mut bad = None;
            let verdict = run_traced(&sock, &dns, dns.len() as u32, vlan, |code, off| {
                let anc = is_abs_load(code) && ours.iter().any(|&k| u64::from(k) == off);
                if off >= 1 << 31 && !anc {
                    bad.get_or_insert(off);
                }
            });
            assert_eq!(
                bad,
                None,
                "'{expr}' {vlan:?}:\n{}",
                super::cbpf::Listing(&sock)
            );
            if !expr.contains(" or ") && !expr.contains("port 53") {
                assert_eq!(verdict, 0, "'{expr}' {vlan:?}");
            }
        }
    }
}
