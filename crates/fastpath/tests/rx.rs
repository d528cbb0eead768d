//! Tier 1: real frames cross a veth pair in a private network namespace and every AF_PACKET
//! backend must deliver exactly them: same bytes, same order, right lengths, increasing
//! timestamps, exact counters. Needs root; with `FASTPATH_REQUIRE_PRIV=1` (CI) a missing
//! privilege fails instead of skipping.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fastpath::{Backend, Config, Error, FanoutMode, MmapConfig, Receiver};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, is_root, require, udp_frame, udp_frames, vlan_frame, NetNs,
    RawSender, Veth, DST_MAC,
};

mod common;
use common::{collect, wait_error};

const AF_PACKET_BACKENDS: [Backend; 3] = [Backend::Recv, Backend::RecvBatch, Backend::Mmap];

fn setup() -> (NetNs, Veth) {
    let ns = NetNs::new("fpt");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth)
}

#[test]
fn every_backend_delivers_the_frames_byte_exact_in_order() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).expect("open");
        assert_eq!(rx.backend(), backend);
        let sent = udp_frames(300, veth.a_mac);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
        let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
        assert_frames_eq(&data, &sent);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.orig_len as usize, s.len(), "{backend}: orig_len");
            assert_eq!(g.ifindex, veth.b_index, "{backend}: ifindex");
        }
        let now = fastpath_now_ns();
        for w in got.windows(2) {
            assert!(w[0].ts_ns <= w[1].ts_ns, "{backend}: timestamps go back");
        }
        assert!(
            got[0].ts_ns > now - 60_000_000_000 && got[0].ts_ns <= now,
            "{backend}: timestamp {} is not within the last minute of {now}",
            got[0].ts_ns
        );
        let st = rx.stats().unwrap();
        assert_eq!(st.dropped, 0, "{backend}: {st:?}");
        assert!(st.received >= sent.len() as u64, "{backend}: {st:?}");
        assert!(st.delivered >= sent.len() as u64, "{backend}: {st:?}");
    }
}

fn fastpath_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn snaplen_truncates_but_keeps_the_original_length() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend).snaplen(64)).unwrap();
        let sent: Vec<_> = (0..50)
            .map(|s| udp_frame(s, 60 + s as usize * 20, DST_MAC, veth.a_mac))
            .collect();
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
        assert_eq!(got.len(), sent.len(), "{backend}");
        for (g, s) in got.iter().zip(&sent) {
            let want = &s[..s.len().min(64)];
            assert_eq!(g.data, want, "{backend}: truncated bytes");
            assert_eq!(g.orig_len as usize, s.len(), "{backend}: orig_len");
        }
    }
}

#[test]
fn a_vlan_tag_stripped_by_the_kernel_is_put_back() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
        let sent: Vec<_> = (0..20)
            .map(|s| vlan_frame(s, 64 + s as usize, 100 + s as u16, DST_MAC, veth.a_mac))
            .collect();
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
        let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
        assert_frames_eq(&data, &sent);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.orig_len as usize, s.len(), "{backend}");
        }
    }
}

/// Overload: send more than the ring/socket buffer holds without reading; afterwards every sent
/// packet is either delivered or counted as dropped, exactly.
#[test]
fn drop_counters_are_exact_under_overload() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    const SENT: usize = 3000;
    for backend in AF_PACKET_BACKENDS {
        let mut m = MmapConfig::default();
        m.block_size = 4096;
        m.block_count = 4;
        let cfg = Config::new(&veth.b)
            .backend(backend)
            .rcvbuf(64 << 10)
            .mmap(m);
        let mut rx = Receiver::open(&cfg).unwrap();
        let sent: Vec<_> = (0..SENT as u32)
            .map(|s| udp_frame(s, 200, DST_MAC, veth.a_mac))
            .collect();
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        // Now drain whatever the kernel kept.
        let mut delivered = 0usize;
        loop {
            let batch = rx.recv(Some(Duration::from_millis(50))).unwrap();
            if batch.is_empty() {
                break;
            }
            delivered += batch
                .iter()
                .filter(|p| frame_seq(p.data()).is_some())
                .count();
        }
        let st = rx.stats().unwrap();
        assert!(
            st.dropped > 0,
            "{backend}: the overload did not overflow: {st:?}"
        );
        assert_eq!(
            st.received, SENT as u64,
            "{backend}: kernel saw every sent frame: {st:?}"
        );
        assert_eq!(st.delivered, delivered as u64, "{backend}: {st:?}");
        assert_eq!(
            st.delivered + st.dropped,
            SENT as u64,
            "{backend}: sent = received + dropped: {st:?}"
        );
    }
}

#[test]
fn fanout_spreads_one_interface_over_several_sockets() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in [Backend::RecvBatch, Backend::Mmap] {
        let cfg = Config::new(&veth.b).backend(backend);
        let mut rxs = fastpath::open_fanout(&cfg, 2, FanoutMode::Lb).unwrap();
        let group = rxs[0].fanout_group().unwrap();
        assert_eq!(rxs[1].fanout_group(), Some(group));
        let sent = udp_frames(200, veth.a_mac);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let mut seen = BTreeSet::new();
        let mut per_socket = Vec::new();
        for rx in &mut rxs {
            let got = collect(rx, 100, Duration::from_secs(3));
            per_socket.push(got.len());
            for g in got {
                assert!(
                    seen.insert(frame_seq(&g.data).unwrap()),
                    "{backend}: duplicate"
                );
            }
        }
        assert_eq!(
            seen.len(),
            sent.len(),
            "{backend}: union is everything sent"
        );
        assert_eq!(per_socket, vec![100, 100], "{backend}: lb is round robin");
        let mut total = fastpath::Stats::default();
        for rx in &mut rxs {
            total.merge(&rx.stats().unwrap());
        }
        assert_eq!(total.delivered, 200, "{backend}: merged counters");
    }
}

/// At low rate a TPACKET_V3 packet must not wait long for its block to retire.
#[test]
fn mmap_latency_at_low_rate_is_bounded_by_the_block_timeout() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Mmap)).unwrap();
    let tx = RawSender::new(&veth.a).unwrap();
    let mut lat = Vec::new();
    for s in 0..30 {
        let f = udp_frame(s, 64, DST_MAC, veth.a_mac);
        let t0 = Instant::now();
        tx.send(&f).unwrap();
        let got = collect(&mut rx, 1, Duration::from_secs(2));
        assert_eq!(got.len(), 1);
        lat.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(3));
    }
    lat.sort();
    let median = lat[lat.len() / 2];
    eprintln!(
        "mmap single-packet latency: median {median:?}, max {:?}",
        lat[lat.len() - 1]
    );
    // The kernel's retire timer runs on jiffies; allow generous slack for a noisy CI machine.
    assert!(
        median < Duration::from_millis(5),
        "median latency {median:?}"
    );
}

#[test]
fn bad_input_gets_named_errors() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (ns, veth) = setup();
    let err = Receiver::open(&Config::new("fpnosuch0")).unwrap_err();
    assert!(matches!(err, Error::NoSuchInterface { .. }), "{err}");
    assert!(err.to_string().contains("fpnosuch0"), "{err}");

    let err = Receiver::open(&Config::new("bad/name")).unwrap_err();
    assert!(err.is_usage(), "{err}");

    ns.set_down(&veth.b).unwrap();
    for backend in AF_PACKET_BACKENDS {
        let err = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap_err();
        assert!(
            matches!(err, Error::InterfaceDown { .. }),
            "{backend}: {err}"
        );
        assert!(err.to_string().contains("ip link set"), "{err}");
    }
    ns.set_up(&veth.b).unwrap();

    for snaplen in [0, fastpath::MAX_SNAPLEN + 1] {
        let err = Receiver::open(&Config::new(&veth.b).snaplen(snaplen)).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("snaplen"),
            "{err}"
        );
    }
    let mut m = MmapConfig::default();
    m.block_size = 3 << 20;
    let err = Receiver::open(&Config::new(&veth.b).mmap(m)).unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("power of two"),
        "{err}"
    );
    let mut m = MmapConfig::default();
    m.block_count = 3;
    let err = Receiver::open(&Config::new(&veth.b).mmap(m)).unwrap_err();
    assert!(err.is_usage(), "{err}");
    // A ring past the 4 GiB TPACKET_V3 holds is a configuration mistake (a usage error), not a
    // shortage of memory; the hint never overflows.
    for (size, count) in [(1 << 30, 1 << 10), (1 << 30, 16), (1 << 20, u32::MAX)] {
        let mut m = MmapConfig::default();
        m.block_size = size;
        m.block_count = count;
        let err = Receiver::open(&Config::new(&veth.b).mmap(m)).unwrap_err();
        assert!(err.is_usage(), "{size} x {count}: {err}");
        assert!(!err.to_string().contains("try 0"), "{err}");
    }

    let err = Receiver::open(&Config::new(&veth.b).backend(Backend::Dpdk)).unwrap_err();
    assert!(err.to_string().contains("--features dpdk"), "{err}");
}

#[test]
fn removing_the_interface_while_capturing_is_a_clear_error() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (ns, veth) = setup();
    for backend in AF_PACKET_BACKENDS {
        let veth2 = ns.veth_pair("fpc", "fpd");
        let mut rx = Receiver::open(&Config::new(&veth2.b).backend(backend)).unwrap();
        ns.ip(&["link", "del", &veth2.a]).unwrap();
        let err = wait_error(&mut rx, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{backend}: no error after removal"));
        assert!(
            matches!(err, Error::InterfaceGone { .. }),
            "{backend}: {err}"
        );
        assert!(err.to_string().contains("fpd"), "{backend}: {err}");
        // Counters survive the interface.
        rx.stats().unwrap();
    }
    // Down (not removed) is told apart from gone.
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
        ns.set_down(&veth.b).unwrap();
        let err = wait_error(&mut rx, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{backend}: no error after down"));
        assert!(
            matches!(err, Error::InterfaceDown { .. }),
            "{backend}: {err}"
        );
        ns.set_up(&veth.b).unwrap();
    }
}
