//! Filters: differential tests against libpcap, parser robustness, and kernel attachment on
//! every AF_PACKET rung.
//!
//! - `differential_against_libpcap`: for each expression of a corpus, libpcap's own program
//!   (`tcpdump -ddd EXPR`) and fastpath's are both run by fastpath's interpreter over a corpus
//!   of built frames; every verdict must agree. Needs `tcpdump` (skipped without it, unless
//!   `FASTPATH_REQUIRE_PRIV=1`).
//! - `end_to_end_against_tcpdump_read`: the same frames in a pcap file, filtered by
//!   `tcpdump -r` (libpcap's interpreter), against fastpath's verdicts.
//! - `socket_form_agrees_on_stripped_frames`: the AF_PACKET form of every expression, run on
//!   each frame as the kernel hands it to a socket filter (outer tag moved to metadata), gives
//!   the verdict the program gives on the frame with its tag in place.
//! - `parser_never_panics`: thousands of random and mutated expressions.
//! - `direction_on_every_rung`: `inbound`/`outbound` through the kernel (root);
//!   `kernel_accepts_every_socket_program`: every expression's AF_PACKET form attaches (root).
//! - `libpcap_filter_tests` (ignored: needs libpcap's `testprogs/TESTrun`): the Ethernet
//!   expressions of libpcap's own filter tests, coverage and verdicts.
//! - `only_matching_frames_arrive_on_every_rung` (recv, recv-batch, mmap, xdp) and
//!   `dpdk_hands_out_only_matching_packets`: a veth pair in a private netns; only matching
//!   frames arrive, byte-exact, even with unfiltered traffic flowing while the handle opens
//!   (root). `vlan_frames_match_alike_on_every_rung`: tagged, double-tagged and untagged frames
//!   through the kernel; every rung delivers exactly the frames the interpreter accepts (root).

use std::process::Command;

use fastpath::filter::{cbpf, Filter};
use fastpath_testutil::{have_cmd, is_root, require, TempDir};

mod common;
use common::collect_quiet;

mod filter_corpus;
use filter_corpus::*;

// ---------------------------------------------------------------------------------------------
// Expressions.

const EXPRS: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "sctp",
    "igmp",
    "not ip",
    "ether proto 0x86dd",
    "ether proto \\arp",
    "ip proto 47",
    "ip6 proto 17",
    "proto 17",
    "ip proto \\udp",
    "host 10.0.0.1",
    "src host 10.0.0.1",
    "dst host 10.0.0.1",
    "src and dst host 10.0.0.1",
    "src or dst host 10.0.0.2",
    "ip host 10.0.0.2",
    "arp host 10.0.0.2",
    "ip src 192.168.1.1",
    "host 2001:db8::1",
    "src host fe80::1",
    "dst host ::1",
    "ip6 dst 2001:db8::2",
    "net 10.0.0.0/8",
    "net 10",
    "dst net 192.168.0.0/16",
    "src net 172.16.0.0 mask 255.240.0.0",
    "net 10.0.0.0/31",
    "net 0.0.0.0/0",
    "net 2001:db8::/32",
    "src net fe80::/10",
    "ip6 net ::/0",
    "port 53",
    "src port 53",
    "dst port 53",
    "udp port 53",
    "tcp port 80",
    "tcp dst port 80",
    "port 53 or 80",
    "port domain",
    "tcp port http",
    "udp src port 123",
    "sctp port 53",
    "portrange 1000-2047",
    "tcp portrange 10-100",
    "src portrange 50-60",
    "udp dst portrange 5000-5001",
    "ether host 2:0:0:0:0:a",
    "ether src 02:00:00:00:00:0a",
    "ether dst 2:0:0:0:0:b",
    "ether broadcast",
    "ether multicast",
    "broadcast",
    "multicast",
    "vlan",
    "vlan 100",
    "vlan 3",
    "vlan and ip",
    "vlan 100 and udp port 53",
    "vlan and vlan 3 and udp port 53",
    "vlan 10 and vlan",
    "vlan and ip6 and port 53",
    "vlan 200 and arp",
    "vlan or ip",
    "ip or vlan and tcp",
    "len > 100",
    "len <= 64",
    "greater 80",
    "less 60",
    "len - 14 > 30",
    "udp[8:2] = 0x1234",
    "udp[8:2] = 0x1234 or tcp",
    "ip[0] & 0xf != 5",
    "ip[0] & 0xf = 5 and ip[6:2] & 0x1fff = 0",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn",
    "tcp[13] = 0x12",
    "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0",
    "icmp[icmptype] = icmp-echo",
    "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
    "icmp6[icmp6type] = icmp6-echo",
    "icmp6[0] = 135",
    "ip6[6] = 58",
    "ether[0] & 1 != 0",
    "ether[12:2] = 0x8100",
    "arp[7] = 2",
    "ip[2:2] > 40",
    "ip[2:2] - 20 > 30",
    "ip[9] * 2 = 34",
    "ip[9] / 2 = 8",
    "ip[9] % 7 = 3",
    "ip[9] ^ 0x10 = 1",
    "ip[9] | 1 = 17",
    "ip[0] >> 4 = 4",
    "ip[9] << 1 = 12",
    "-ip[9] = -17",
    "ip[ip[0] & 0xf] = 64",
    "udp[0:2] = udp[2:2]",
    "tcp[0:2] > tcp[2:2]",
    "ip[12:4] = ip[16:4]",
    "ether[len - 1] = 0",
    "ip[40] = 0",
    "ip[40] = 0 or udp",
    "udp or ip[40] = 0",
    "tcp[20:4] = 0x68656c6c",
    "udp[len - 20] = 0",
    "udp[(ip[0] & 0xf) * 2] = 0",
    "1 = 1",
    "1 = 2 or udp",
    "not (tcp or udp)",
    "!tcp && !udp",
    "tcp or udp and port 53",
    "(tcp or udp) and port 53",
    "udp and (port 53 or port 123) and not host 10.0.0.2",
    "host 10.0.0.1 and (tcp port 80 or icmp)",
    "not arp and not ip6 and not vlan",
    "ip and not net 10.0.0.0/8",
    "ip6 or arp or icmp",
    "src host 10.0.0.1 and dst port 53",
    "(ip[2:2] > 30) and ip",
    "tcp and (tcp[tcpflags] & tcp-ack = 0)",
    "udp and udp[4:2] > 20",
    "ip and ip[8] = 64",
    "len >= 60 and len <= 80",
    // Bytes around a VLAN tag, at constant and computed offsets (the AF_PACKET form reads
    // these from metadata when the kernel moved the tag out of the frame).
    "ether[12:2] = 0x8100",
    "ether[14:2] & 0xfff = 100",
    "ether[12:4] = 0x81000064",
    "ether[13] = 0",
    "ether[11:2] > 2",
    "ether[ether[0] & 0xf] = 2",
    "ether[(ether[15] & 7) + 10:4] != 0",
    "vlan and ether[len - 2:2] = 0",
    "vlan 100 and len > 60",
    // The link layer beyond Ethernet II: 802.2 LLC, SNAP, the OSI and legacy families.
    "iso",
    "clnp",
    "esis",
    "es-is",
    "isis",
    "is-is",
    "l1",
    "l2",
    "iih",
    "lsp",
    "snp",
    "csnp",
    "psnp",
    "iso proto 0x83",
    "iso proto \\clnp",
    "isis proto 18 or 20",
    "isis proto 0x1b or 0x19 or 0x14",
    "stp",
    "ipx",
    "netbeui",
    "atalk",
    "aarp",
    "decnet",
    "lat",
    "mopdl",
    "moprc",
    "sca",
    "ether proto \\ipx",
    "ether proto \\atalk",
    "ether proto 0x42",
    "ether proto 6",
    "ether proto loopback",
    "link proto 0xfe",
    "llc",
    "llc i",
    "llc s",
    "llc u",
    "llc rr",
    "llc rej",
    "llc ui",
    "llc xid",
    "llc test",
    "llc disc",
    "llc frmr",
    "not llc and ether[12:2] < 1500",
    "decnet host 50.764",
    "decnet src 50.764",
    "decnet dst host 50.764",
    "decnet src and dst 50.764",
    "vrrp",
    "carp",
    "igrp",
    "pim",
    "ah",
    "esp",
    "ip proto \\vrrp",
    "ip proto eigrp",
    "ip6 proto ipv6-icmp",
    "ip proto 6 or 17",
    "vrrp[0] = 0x21",
    "pim[0] & 0xf0 = 0x20",
    "ip multicast",
    "ip6 multicast",
    "ether multicast and not ip multicast",
    "tcp port smtp",
    "port ssh",
    "port bootps",
    "udp portrange bootpc-bootps",
    "portrange 53",
    "tcp portrange smtp-domain",
    "port domain or 123",
    "port domain or smtp",
    "udp port domain or bootps",
    "ether proto \\ip or \\arp",
    "port 53 or port 80 or port 7 or port 22 or port 6081",
    "sctp port 5672",
    "ether src ab.cd.ef.00.00.02",
    "ether dst abcdef000003",
    "ether host abcd.ef00.0001",
    "ether src host ab-cd-ef-00-00-02",
    "arp net 192.168 mask 255.255",
    "host 10.0",
    "net 192.168.7",
    "rarp src 1.2.3.4",
    "fddi[0] & 1 = 1",
    "length > 100",
    // Encapsulations: what follows looks inside.
    "mpls",
    "mpls 100",
    "mpls and ip",
    "mpls and ip6",
    "mpls 100 and mpls 200 and udp port 53",
    "mpls and mpls and mpls 7",
    "mpls and host 10.0.0.2",
    "mpls and ip[9] = 17",
    "mpls 123 and tcp[tcpflags] & tcp-syn != 0",
    "vlan 100 and mpls 100 and udp",
    "mpls and llc",
    "mpls and ether src 2:0:0:0:0:a",
    "pppoed",
    "pppoes",
    "pppoes 1234",
    "pppoes and ip",
    "pppoes and ip6",
    "pppoes 5 and udp port 53",
    "pppoes and mpls 123",
    "pppoes and mpls and udp port 53",
    "pppoes and arp",
    "pppoes and host 1.2.3.4",
    "pppoes and ether[0] = 0",
    "pppoes and iso",
    "geneve",
    "geneve 12345",
    "geneve and ip",
    "geneve and ip6",
    "geneve and arp",
    "geneve and udp port 53",
    "geneve 7 and port 53",
    "geneve and ether src ab:cd:ef:0:0:2",
    "geneve 12345 and ether host ab:cd:ef:0:0:1",
    "geneve and ether broadcast",
    "geneve and ether multicast",
    "geneve and ip[9] = 17",
    "geneve and udp[2:2] = 53",
    "geneve and ether[12:2] = 0x800",
    "geneve and host 10.0.0.2",
    "geneve and geneve",
    "geneve and geneve 12345 and arp",
    "geneve and iso",
    "geneve and tcp[ip[0] & 0xf] = 0",
    "mpls and geneve",
    "vlan and geneve and udp",
    // The packet's direction (the interpreter: every packet is a received one).
    "inbound",
    "outbound",
    "not outbound and udp",
    "inbound and vlan 100",
];

fn tcpdump_program(expr: &str) -> Vec<cbpf::Insn> {
    let out = Command::new("tcpdump")
        .args(["-ddd", "--", expr])
        .output()
        .expect("running tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -ddd '{expr}' failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cbpf::parse_decimal(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("tcpdump -ddd '{expr}' output: {e}"))
}

#[test]
fn differential_against_libpcap() {
    require!(
        have_cmd("tcpdump"),
        "needs tcpdump (apt-get install tcpdump)"
    );
    let pkts = corpus();
    let mut pairs = 0usize;
    let mut failures = Vec::new();
    let (mut len_ours, mut len_theirs) = (0usize, 0usize);
    for expr in EXPRS {
        let theirs = tcpdump_program(expr);
        cbpf::check(&theirs).unwrap_or_else(|e| panic!("libpcap's '{expr}': {e}"));
        let ours = Filter::new(expr).unwrap_or_else(|e| panic!("'{expr}':\n{e}"));
        len_ours += ours.insns().len();
        len_theirs += theirs.len();
        pairs += pkts.len();
        failures.extend(verdict_differences(expr, &theirs, &ours, &pkts));
    }
    eprintln!(
        "compared {} expressions x {} packets = {pairs} verdicts against libpcap; programs: \
         {len_ours} instructions in all, libpcap's (optimized) {len_theirs} ({:.2}x)",
        EXPRS.len(),
        pkts.len(),
        len_ours as f64 / len_theirs as f64
    );
    assert!(
        failures.is_empty(),
        "{} of {pairs} verdicts differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every verdict of libpcap's program for `expr` (`tcpdump -ddd`, `None` if tcpdump refuses
/// the expression) and of `ours` over `pkts`, as "expr on packet: libpcap x, fastpath y" lines
/// for each that differs.
fn verdict_differences(
    expr: &str,
    theirs: &[cbpf::Insn],
    ours: &Filter,
    pkts: &[Pkt],
) -> Vec<String> {
    let mut out = Vec::new();
    for p in pkts {
        let want = cbpf::run(theirs, &p.data, p.wirelen) != 0;
        let got = ours.matches(&p.data, p.wirelen);
        if want != got {
            out.push(format!(
                "'{expr}' on {} ({} of {} bytes): libpcap {want}, fastpath {got}",
                p.what,
                p.data.len(),
                p.wirelen
            ));
        }
    }
    out
}

/// libpcap's own filter tests: the Ethernet expressions of the accept tests in its
/// `testprogs/TESTrun` (extracted by `filter_corpus/libpcap_exprs.pl`). Of those Debian's
/// tcpdump accepts, fastpath must compile nearly all, and every one it compiles must give
/// libpcap's verdict on every frame of the corpus. Needs a libpcap source tree:
///
/// ```text
/// FASTPATH_LIBPCAP_TESTRUN=/path/to/libpcap/testprogs/TESTrun \
///     cargo test -p fastpath --test filter -- --ignored libpcap_filter_tests --nocapture
/// ```
#[test]
#[ignore = "needs libpcap's testprogs/TESTrun: set FASTPATH_LIBPCAP_TESTRUN"]
fn libpcap_filter_tests() {
    let testrun = std::env::var("FASTPATH_LIBPCAP_TESTRUN")
        .expect("set FASTPATH_LIBPCAP_TESTRUN to libpcap's testprogs/TESTrun");
    require!(
        have_cmd("tcpdump") && have_cmd("perl") && have_cmd("timeout"),
        "needs tcpdump, perl and timeout"
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/filter_corpus/libpcap_exprs.pl"
    );
    let out = Command::new("perl")
        .arg(script)
        .arg(&testrun)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exprs: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e = line.split_once('\t').map_or("", |(_, e)| e).to_string();
        if !exprs.contains(&e) {
            exprs.push(e);
        }
    }
    assert!(
        exprs.len() > 300,
        "only {} expressions extracted",
        exprs.len()
    );
    let pkts = corpus();
    let (mut accepted, mut compiled) = (0, 0);
    let (mut failures, mut refused) = (Vec::new(), Vec::new());
    for expr in &exprs {
        // Host names make libpcap ask DNS: give each expression a few seconds.
        let theirs = Command::new("timeout")
            .args(["5", "tcpdump", "-ddd", "--", expr])
            .output()
            .unwrap();
        if !theirs.status.success() {
            continue;
        }
        accepted += 1;
        let theirs = cbpf::parse_decimal(&String::from_utf8_lossy(&theirs.stdout)).unwrap();
        match Filter::new(expr) {
            Ok(ours) => {
                compiled += 1;
                failures.extend(verdict_differences(expr, &theirs, &ours, &pkts));
            }
            Err(e) => refused.push(format!("'{expr}': {}", e.message)),
        }
    }
    eprintln!(
        "libpcap's Ethernet filter tests: {} expressions, Debian's tcpdump accepts {accepted}, \
         fastpath compiles {compiled} of those ({:.1}%); {} verdicts compared on {} packets, {} \
         differ. Not compiled:\n{}",
        exprs.len(),
        100.0 * compiled as f64 / accepted as f64,
        compiled * pkts.len(),
        pkts.len(),
        failures.len(),
        refused.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        compiled * 100 >= accepted * 95,
        "fastpath compiles {compiled} of {accepted}"
    );
}

/// `frame` with an outer tag inserted after the MAC addresses.
fn push_tag(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// What a socket filter sees of `frame`: Linux moves an outer 802.1Q/802.1ad tag to the skb's
/// metadata (`skb_vlan_untag`), other TPIDs stay in the bytes.
fn strip_outer_tag(frame: &[u8]) -> (Vec<u8>, Option<cbpf::VlanTag>) {
    let tpid = u16::from_be_bytes([frame[12], frame[13]]);
    if frame.len() < 18 || !matches!(tpid, 0x8100 | 0x88a8) {
        return (frame.to_vec(), None);
    }
    let tci = u16::from_be_bytes([frame[14], frame[15]]);
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&frame[16..]);
    (f, Some(cbpf::VlanTag { tpid, tci }))
}

#[test]
fn socket_form_agrees_on_stripped_frames() {
    // The corpus, and every whole frame of it once more under an 802.1Q and an 802.1ad tag.
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for p in corpus() {
        if p.data.len() as u32 != p.wirelen || p.data.len() < 14 {
            continue; // the kernel filters whole frames
        }
        frames.push((
            format!("{} + tag 100", p.what),
            push_tag(&p.data, 0x8100, 100),
        ));
        frames.push((
            format!("{} + 802.1ad tag 3", p.what),
            push_tag(&p.data, 0x88a8, 0x2003),
        ));
        frames.push((p.what, p.data));
    }
    let mut pairs = 0;
    let mut tagged = 0;
    let mut failures = Vec::new();
    for expr in EXPRS {
        let f = Filter::new(expr).unwrap();
        let sock = f
            .socket_program()
            .unwrap_or_else(|e| panic!("'{expr}': {e}"));
        cbpf::check(&sock).unwrap_or_else(|e| panic!("'{expr}' socket form: {e}"));
        for (what, frame) in &frames {
            let want = f.run(frame, frame.len() as u32);
            let (seen, tag) = strip_outer_tag(frame);
            let got = cbpf::run_with_vlan(&sock, &seen, seen.len() as u32, tag);
            pairs += 1;
            tagged += usize::from(tag.is_some());
            if got != want {
                failures.push(format!(
                    "'{expr}' on {what}: {want} on the frame, socket form {got}"
                ));
            }
        }
    }
    eprintln!("compared {pairs} socket-form verdicts ({tagged} with the tag in metadata)");
    assert!(
        failures.is_empty(),
        "{} of {pairs} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The corpus as a classic pcap file; packet `i` has timestamp `i` seconds.
fn write_pcap(path: &std::path::Path, pkts: &[Pkt]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in pkts.iter().enumerate() {
        b.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&p.wirelen.to_le_bytes());
        b.extend_from_slice(&p.data);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn end_to_end_against_tcpdump_read() {
    require!(
        have_cmd("tcpdump"),
        "needs tcpdump (apt-get install tcpdump)"
    );
    // libpcap refuses records with no bytes at all; keep the rest.
    let pkts: Vec<Pkt> = corpus()
        .into_iter()
        .filter(|p| !p.data.is_empty())
        .collect();
    let dir = TempDir::new("fastpath-filter");
    let file = dir.path().join("corpus.pcap");
    write_pcap(&file, &pkts);
    let exprs = [
        "udp and dst port 53",
        "tcp[tcpflags] & tcp-syn != 0",
        "vlan and udp port 53",
        "host 10.0.0.1 or host 2001:db8::1",
        "icmp or icmp6",
        "ip[0] & 0xf != 5",
        "not arp and len > 60",
    ];
    let mut checked = 0;
    for expr in exprs {
        let out = Command::new("tcpdump")
            .args(["-nn", "-tt", "-r"])
            .arg(&file)
            .arg(expr)
            .output()
            .expect("running tcpdump -r");
        assert!(
            out.status.success(),
            "tcpdump -r '{expr}': {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got_theirs: Vec<usize> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split('.').next()?.trim().parse::<usize>().ok())
            .map(|sec| sec - 1)
            .collect();
        let f = Filter::new(expr).unwrap();
        let ours: Vec<usize> = pkts
            .iter()
            .enumerate()
            .filter(|(_, p)| f.matches(&p.data, p.wirelen))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ours, got_theirs, "'{expr}': packets matched differ");
        checked += pkts.len();
    }
    eprintln!("compared {checked} verdicts with tcpdump -r");
}

// ---------------------------------------------------------------------------------------------
// Robustness.

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn parser_never_panics() {
    const PIECES: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        ":",
        "and",
        "or",
        "not",
        "!",
        "&&",
        "||",
        "ip",
        "ip6",
        "tcp",
        "udp",
        "vlan",
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "ether",
        "proto",
        "len",
        "=",
        "!=",
        "<",
        ">",
        "<=",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "&",
        "|",
        "<<",
        ">>",
        "0",
        "1",
        "4",
        "65535",
        "4294967295",
        "0x1fff",
        "10.0.0.1",
        "10.0",
        "2001:db8::1",
        "::",
        "1:2:3:4:5:6",
        "/",
        "mask",
        "255.0.0.0",
        "tcp-syn",
        "tcpflags",
        "icmp",
        "greater",
        "less",
        "\\",
        "foo",
        "broadcast",
        " ",
        "1-2",
        "-",
        "icmp6",
        "arp",
        "icmptype",
        "mpls",
        "pppoes",
        "pppoed",
        "geneve",
        "vxlan",
        "llc",
        "iso",
        "isis",
        "l1",
        "decnet",
        "50.764",
        "inbound",
        "outbound",
        "ab.cd.ef.00.00.02",
        "abcdef000003",
        "domain",
        "smtp-domain",
        "12345",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pkts = corpus();
    let mut compiled = 0;
    for round in 0..6000 {
        let s = if round % 2 == 0 {
            // Mutate a corpus expression.
            let mut b: Vec<u8> = EXPRS[rng.below(EXPRS.len())].as_bytes().to_vec();
            for _ in 0..=rng.below(2) {
                let at = rng.below(b.len() + 1);
                match rng.below(4) {
                    0 if at < b.len() => {
                        b.remove(at);
                    }
                    1 => b.insert(at, b"()[]:&|!=<>-+*/%^0129afx. \\"[rng.below(27)]),
                    2 if at < b.len() => b[at] = (rng.next() & 0x7f) as u8,
                    _ => {
                        let p = PIECES[rng.below(PIECES.len())].as_bytes();
                        b.splice(at..at, p.iter().copied());
                    }
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        } else {
            (0..rng.below(12) + 1)
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect::<Vec<_>>()
                .join(if rng.below(3) == 0 { "" } else { " " })
        };
        if let Ok(f) = Filter::new(&s) {
            compiled += 1;
            cbpf::check(f.insns())
                .unwrap_or_else(|e| panic!("'{s}' compiled to a bad program: {e}"));
            for p in pkts.iter().step_by(7) {
                let _ = f.run(&p.data, p.wirelen);
            }
        }
    }
    // Deep nesting is an error, not a stack overflow.
    let deep = "(".repeat(100_000) + "ip" + &")".repeat(100_000);
    assert!(Filter::new(&deep).is_err());
    let deep = "not ".repeat(100_000) + "ip";
    assert!(Filter::new(&deep).is_err());
    let deep = "ip[".repeat(50_000) + "0" + &"]".repeat(50_000) + " = 1";
    assert!(Filter::new(&deep).is_err());
    eprintln!("6000 random expressions, {compiled} compiled");
}

// ---------------------------------------------------------------------------------------------
// Kernel attachment (root).

/// The classic-to-eBPF translation, run by the kernel (`BPF_PROG_TEST_RUN`), agrees with the
/// interpreter on every expression and every frame of the corpus: a test program returns
/// `XDP_PASS` for frames the filter accepts and `XDP_DROP` for the others.
#[test]
fn xdp_translation_matches_the_interpreter() {
    use fastpath::unstable::bpf::{test_run, XdpAction, XdpProgram};
    use fastpath::unstable::xdp_prog::filter_action_insns;
    require!(is_root(), "needs root (CAP_BPF) for BPF_PROG_TEST_RUN");
    // The kernel runs XDP on whole frames: what it sees is what was captured.
    let pkts: Vec<Pkt> = corpus()
        .into_iter()
        .filter(|p| p.data.len() >= 14)
        .collect();
    let mut pairs = 0;
    let mut failures = Vec::new();
    for expr in EXPRS {
        let f = Filter::new(expr).unwrap();
        let insns = filter_action_insns(&f, XdpAction::Pass, XdpAction::Drop).unwrap();
        let prog = XdpProgram::load("fp_filter_test", &insns)
            .unwrap_or_else(|e| panic!("'{expr}' does not load: {e}"));
        for p in &pkts {
            let want = f.matches(&p.data, p.data.len() as u32);
            let r = test_run(&prog, &p.data, 1).unwrap();
            let got = match r.action() {
                Some(XdpAction::Pass) => true,
                Some(XdpAction::Drop) => false,
                other => panic!("'{expr}' on {}: unexpected action {other:?}", p.what),
            };
            pairs += 1;
            if got != want {
                failures.push(format!(
                    "'{expr}' on {}: interpreter {want}, XDP {got}",
                    p.what
                ));
            }
        }
    }
    eprintln!("compared {pairs} XDP verdicts with the interpreter");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn only_matching_frames_arrive_on_every_rung() {
    use fastpath::{Backend, Config, Receiver};
    use fastpath_testutil::{frame_seq, udp_frame, NetNs, RawSender};
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpflt");
    let v = ns.veth_pair("fpflt_a", "fpflt_b");
    let dst = [0x02, 0, 0, 0, 0, 0xbb];
    let src = [0x02, 0, 0, 0, 0, 0xaa];
    // udp_frame builds IPv4/UDP; keep even sequence numbers, drop odd ones by rewriting the
    // destination port of the odd frames.
    let frames: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            let mut f = udp_frame(i, 120, dst, src);
            let port: u16 = if i % 2 == 0 { 7777 } else { 7778 };
            // Ethernet 14 + IPv4 20: UDP destination port at 36.
            f[36..38].copy_from_slice(&port.to_be_bytes());
            f
        })
        .collect();
    let filter = Filter::new("udp dst port 7777").unwrap();
    for backend in [
        Backend::Recv,
        Backend::RecvBatch,
        Backend::Mmap,
        Backend::Xdp,
    ] {
        // Unfiltered traffic already flowing while the socket opens must not leak in.
        let tx = RawSender::new(&v.a).unwrap();
        let cfg = Config::new(v.b.clone())
            .backend(backend)
            .promiscuous(false)
            .filter(filter.clone());
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        let stop = AtomicBool::new(false);
        let sent = AtomicU32::new(0);
        let rx = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = tx.send(&frames[1]);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
            while sent.load(Ordering::Relaxed) < 100 {
                std::thread::yield_now();
            }
            let rx = Receiver::open(&cfg);
            stop.store(true, Ordering::Relaxed);
            rx
        });
        let mut rx = rx.unwrap_or_else(|e| panic!("{backend}: {e}"));
        tx.send_all(&frames).unwrap();
        let want: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|f| filter.matches(f, f.len() as u32))
            .collect();
        assert_eq!(want.len(), 20);
        let got = collect_quiet(&mut rx, want.len());
        let seqs: Vec<Option<u32>> = got.iter().map(|f| frame_seq(f)).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{backend}: got sequence numbers {seqs:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, *w, "{backend}: frame differs");
        }
    }
}

/// Tagged traffic through the kernel: Linux moves the outer 802.1Q/802.1ad tag out of the
/// frame before socket filters run (the AF_PACKET rungs), XDP sees it in place. Every rung must
/// hand out exactly the frames the interpreter accepts on the frames as sent, tags in place.
#[test]
fn vlan_frames_match_alike_on_every_rung() {
    use fastpath::{Backend, Config, Receiver};
    use fastpath_testutil::{NetNs, RawSender};
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpvlf");
    let v = ns.veth_pair("fpvlf_a", "fpvlf_b");
    let u4 = |dport: u16| ipv4(&v4(17, H1, H2), &udp(40000, dport, &[0x5a; 18]));
    let frames: Vec<Vec<u8>> = vec![
        eth(MAC_B, MAC_A, &[], 0x0800, &u4(53)),
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x0800,
            &ipv4(&v4(6, H3, H1), &tcp(80, 1000, 0x02)),
        ),
        eth(MAC_B, MAC_A, &[(0x8100, 100)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 200)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 0xa064)], 0x0800, &u4(5353)),
        eth(
            MAC_B,
            MAC_A,
            &[(0x8100, 100)],
            0x86dd,
            &ipv6(17, "2001:db8::1", "2001:db8::2", &udp(9, 53, &[1; 10])),
        ),
        eth(MAC_B, MAC_A, &[(0x88a8, 10), (0x8100, 3)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x9100, 7)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 100)], 0x0806, &arp(1, H1, H2)),
    ];
    let exprs = [
        "vlan",
        "vlan 100",
        "vlan and udp port 53",
        "udp port 53",
        "not vlan",
        "vlan 10 and vlan 3 and udp",
        "vlan and ip6",
        "ether[12:2] = 0x8100 and ether[14:2] & 0xfff = 100",
        "vlan and len > 70",
        "vlan 100 and ether[(ether[15] & 1) + 16:2] = 0x800",
    ];
    let tx = RawSender::new(&v.a).unwrap();
    let mut checked = 0;
    for expr in exprs {
        let filter = Filter::new(expr).unwrap();
        let want: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|f| filter.matches(f, f.len() as u32))
            .collect();
        for backend in [
            Backend::Recv,
            Backend::RecvBatch,
            Backend::Mmap,
            Backend::Xdp,
        ] {
            let cfg = Config::new(v.b.clone())
                .backend(backend)
                .promiscuous(false)
                .filter(filter.clone());
            let mut rx = Receiver::open(&cfg).unwrap_or_else(|e| panic!("{backend} '{expr}': {e}"));
            tx.send_all(&frames).unwrap();
            let got = collect_quiet(&mut rx, want.len());
            let shown = |fs: &[&Vec<u8>]| {
                fs.iter()
                    .map(|f| format!("{:02x?}", &f[12..20]))
                    .collect::<Vec<_>>()
            };
            let got_refs: Vec<&Vec<u8>> = got.iter().collect();
            assert_eq!(
                got_refs,
                want,
                "{backend} '{expr}': got frames starting {:?}, want {:?}",
                shown(&got_refs),
                shown(&want)
            );
            checked += frames.len();
        }
    }
    eprintln!("{checked} tagged/untagged frames filtered alike on recv, recv-batch, mmap, xdp");
}

/// The kernel accepts the AF_PACKET form of every expression of the corpus (its classic BPF
/// checker also refuses a program that may read a scratch word never stored to).
#[test]
fn kernel_accepts_every_socket_program() {
    use fastpath::{Backend, Config, Receiver};
    use fastpath_testutil::NetNs;
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpkacc");
    let v = ns.veth_pair("fpkacc_a", "fpkacc_b");
    for expr in EXPRS {
        let cfg = Config::new(v.b.clone())
            .backend(Backend::Recv)
            .promiscuous(false)
            .filter(Filter::new(expr).unwrap());
        if let Err(e) = Receiver::open(&cfg) {
            panic!("'{expr}': the kernel refuses its socket program: {e}");
        }
    }
}

/// `inbound`/`outbound` through the kernel: on the AF_PACKET rungs the kernel's packet type
/// tells the frames the other end sent (inbound) from those this end sent (outbound, seen by
/// the capture socket as the kernel transmits them); XDP sees received frames only, so
/// `inbound` is every frame there and `outbound` none.
#[test]
fn direction_on_every_rung() {
    use fastpath::{Backend, Config, Receiver};
    use fastpath_testutil::{udp_frame, NetNs, RawSender};
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpdir");
    let v = ns.veth_pair("fpdir_a", "fpdir_b");
    let frames = |from: [u8; 6], to: [u8; 6], first: u32| -> Vec<Vec<u8>> {
        (first..first + 8)
            .map(|i| {
                let mut f = udp_frame(i, 100, to, from);
                f[36..38].copy_from_slice(&7777u16.to_be_bytes());
                f
            })
            .collect()
    };
    let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 0xaa], [2, 0, 0, 0, 0, 0xbb]);
    let to_b = frames(mac_a, mac_b, 0);
    let from_b = frames(mac_b, mac_a, 100);
    let (tx_a, tx_b) = (RawSender::new(&v.a).unwrap(), RawSender::new(&v.b).unwrap());
    let mut checked = 0;
    for backend in [
        Backend::Recv,
        Backend::RecvBatch,
        Backend::Mmap,
        Backend::Xdp,
    ] {
        for outbound in [false, true] {
            let expr = if outbound {
                "outbound and udp dst port 7777"
            } else {
                "inbound and udp dst port 7777"
            };
            let cfg = Config::new(v.b.clone())
                .backend(backend)
                .promiscuous(true)
                .filter(Filter::new(expr).unwrap());
            let mut rx = Receiver::open(&cfg).unwrap_or_else(|e| panic!("{backend} '{expr}': {e}"));
            tx_a.send_all(&to_b).unwrap();
            tx_b.send_all(&from_b).unwrap();
            let want: &[Vec<u8>] = match (outbound, backend) {
                (false, _) => &to_b,
                (true, Backend::Xdp) => &[],
                (true, _) => &from_b,
            };
            let got = collect_quiet(&mut rx, want.len());
            assert_eq!(
                got,
                want,
                "{backend} '{expr}': got {} frames, want {}",
                got.len(),
                want.len()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

/// Tags that travel as skb metadata (a VLAN device's frames over veth, or hardware VLAN
/// stripping on a NIC): a tcx program on the sender pushes tag 100 as metadata, so the frame
/// bytes on the receiving side have none. Every rung must hand out the frame with its tag in
/// place, and `vlan 100` must match it (the AF_PACKET rungs read the metadata through the
/// socket filter's ancillary loads, `xdp` through its device-bound program).
#[test]
fn metadata_tags_come_back_on_every_rung() {
    use fastpath::unstable::bpf::tc::TcxVlanPush;
    use fastpath::{Backend, Config, Receiver};
    use fastpath_testutil::{NetNs, RawSender};
    require!(is_root() && have_cmd("ip"), "needs root and `ip`");
    let ns = NetNs::new("fpvlm");
    let v = ns.veth_pair("fpvlm_a", "fpvlm_b");
    let _push = TcxVlanPush::attach(fastpath_testutil::ifindex(&v.a).unwrap(), 0x8100, 0x2064)
        .expect("tcx egress program (Linux 6.6+)");
    let sent: Vec<Vec<u8>> = (0..6u16)
        .map(|i| {
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x0800,
                &ipv4(&v4(17, H1, H2), &udp(40000 + i, 53, &[i as u8; 20])),
            )
        })
        .collect();
    let tagged: Vec<Vec<u8>> = sent.iter().map(|f| push_tag(f, 0x8100, 0x2064)).collect();
    let tx = RawSender::new(&v.a).unwrap();
    for (expr, want) in [
        (None, tagged.clone()),
        (Some("vlan 100 and udp port 53"), tagged.clone()),
        (Some("udp port 53"), Vec::new()),
    ] {
        for backend in [
            Backend::Recv,
            Backend::RecvBatch,
            Backend::Mmap,
            Backend::Xdp,
        ] {
            let mut cfg = Config::new(v.b.clone())
                .backend(backend)
                .promiscuous(false)
                .take(true);
            if let Some(e) = expr {
                cfg = cfg.filter(Filter::new(e).unwrap());
            }
            let mut rx = Receiver::open(&cfg).unwrap_or_else(|e| panic!("{backend}: {e}"));
            let caps = rx.capabilities();
            if !caps.restores_vlan {
                // xdp on a kernel before 6.8: the tag is lost there, as the capability says.
                assert_eq!(backend, Backend::Xdp, "{backend} must restore tags");
                eprintln!("{backend}: this kernel cannot restore metadata tags; skipped");
                continue;
            }
            tx.send_all(&sent).unwrap();
            let got = collect_quiet(&mut rx, want.len());
            assert_eq!(
                got,
                want,
                "{backend} {expr:?}: got {:02x?}",
                got.iter().map(|f| &f[12..18]).collect::<Vec<_>>()
            );
        }
    }
}

/// A veth pair in a new namespace (`NAME_a` sends, `NAME_b` receives) and a `dpdk` receiver
/// with `filter` on DPDK's af_packet vdev `vdev` over `NAME_b`.
#[cfg(feature = "dpdk")]
fn dpdk_on_veth(
    name: &str,
    vdev: &str,
    filter: &Filter,
) -> (
    fastpath_testutil::NetNs,
    fastpath_testutil::Veth,
    fastpath::Receiver,
) {
    use fastpath::{Backend, Config, Receiver};
    let ns = fastpath_testutil::NetNs::new(name);
    let v = ns.veth_pair(&format!("{name}_a"), &format!("{name}_b"));
    let dev = format!(
        "{vdev},iface={},blocksz=4096,framesz=2048,framecnt=4096",
        v.b
    );
    let cfg = Config::new(dev)
        .backend(Backend::Dpdk)
        .filter(filter.clone());
    let rx = Receiver::open(&cfg).expect("open dpdk");
    (ns, v, rx)
}

/// `dpdk`: the interpreter runs before packets are handed out; rejected mbufs are freed.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_hands_out_only_matching_packets() {
    use fastpath_testutil::{frame_seq, udp_frame, RawSender};
    use std::time::{Duration, Instant};
    require!(
        is_root() && have_cmd("ip"),
        "needs root for network namespaces and DPDK"
    );
    let filter = Filter::new("udp dst port 7777").unwrap();
    let (_ns, v, mut rx) = dpdk_on_veth("fpfd", "net_af_packet0", &filter);
    let frames: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            let mut f = udp_frame(i, 100, [2, 0, 0, 0, 0, 0xbb], v.a_mac);
            let port: u16 = if i % 3 == 0 { 7777 } else { 7778 };
            f[36..38].copy_from_slice(&port.to_be_bytes());
            f
        })
        .collect();
    RawSender::new(&v.a).unwrap().send_all(&frames).unwrap();
    let want: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| filter.matches(f, f.len() as u32))
        .collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
        for p in &batch {
            assert!(
                filter.matches(p.data(), p.orig_len()),
                "a rejected packet was handed out"
            );
            if frame_seq(p.data()).is_some() {
                got.push(p.data().to_vec());
            }
        }
    }
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, *w);
    }
}

/// `dpdk`: DPDK's af_packet PMD puts back the 802.1Q tag the kernel moved out of the frame, so
/// the interpreter sees (and `vlan` matches) the frame as sent.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_filters_tagged_frames() {
    use fastpath_testutil::RawSender;
    require!(
        is_root() && have_cmd("ip"),
        "needs root for network namespaces and DPDK"
    );
    let filter = Filter::new("vlan 100 and udp port 53").unwrap();
    // Its own vdev name: the tests of this file share one EAL.
    let (_ns, v, mut rx) = dpdk_on_veth("fpfv", "net_af_packet7", &filter);
    let u4 = |dport: u16| ipv4(&v4(17, H1, H2), &udp(40000, dport, &[0x5a; 18]));
    let frames: Vec<Vec<u8>> = vec![
        eth(MAC_B, MAC_A, &[(0x8100, 100)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 200)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 0x6064)], 0x0800, &u4(53)),
        eth(MAC_B, MAC_A, &[(0x8100, 100)], 0x0800, &u4(54)),
    ];
    RawSender::new(&v.a).unwrap().send_all(&frames).unwrap();
    let want: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| filter.matches(f, f.len() as u32))
        .collect();
    assert_eq!(want.len(), 2);
    let got = collect_quiet(&mut rx, want.len());
    let got: Vec<&Vec<u8>> = got.iter().collect();
    assert_eq!(got, want);
}
