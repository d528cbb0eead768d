//! Tier 1: real frames cross a veth pair in a private network namespace and every AF_PACKET
//! backend must deliver exactly them: same bytes, same order, right lengths, increasing
//! timestamps, exact counters. Needs root; with `FASTPATH_REQUIRE_PRIV=1` (CI) a missing
//! privilege fails instead of skipping.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fastpath::{
    Backend, CaptureDirection, Config, Direction, Error, FanoutMode, MmapConfig, Receiver,
};
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

/// Every AF_PACKET rung reports the kernel's packet type, and `Config::direction` (tcpdump's
/// `-Q`) selects by it in the kernel: frames arriving from the peer (to this interface's MAC, to
/// broadcast, to another host's MAC) and frames this host sends.
#[test]
fn direction_is_the_kernels_packet_type_and_selects_packets() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    let incoming: Vec<(Vec<u8>, Direction)> = (0..9u32)
        .map(|s| {
            let (dst, dir) = match s % 3 {
                0 => (veth.b_mac, Direction::Host),
                1 => ([0xff; 6], Direction::Broadcast),
                _ => (DST_MAC, Direction::OtherHost),
            };
            (udp_frame(s, 80, dst, veth.a_mac), dir)
        })
        .collect();
    let outgoing: Vec<Vec<u8>> = (100..105u32)
        .map(|s| udp_frame(s, 90, DST_MAC, veth.b_mac))
        .collect();
    for backend in AF_PACKET_BACKENDS {
        for which in [
            CaptureDirection::InOut,
            CaptureDirection::In,
            CaptureDirection::Out,
        ] {
            let cfg = Config::new(&veth.b).backend(backend).direction(which);
            let mut rx = Receiver::open(&cfg).unwrap();
            let frames: Vec<Vec<u8>> = incoming.iter().map(|(f, _)| f.clone()).collect();
            RawSender::new(&veth.a).unwrap().send_all(&frames).unwrap();
            RawSender::new(&veth.b)
                .unwrap()
                .send_all(&outgoing)
                .unwrap();
            let got = collect_directions(&mut rx, Duration::from_millis(400));
            let mut want: Vec<(u32, Direction)> = Vec::new();
            if which != CaptureDirection::Out {
                want.extend((0..9).map(|s| (s, incoming[s as usize].1)));
            }
            if which != CaptureDirection::In {
                want.extend((100..105).map(|s| (s, Direction::Outgoing)));
            }
            assert_eq!(got, want, "{backend} {which:?}");
            // What the kernel rejected by direction is not counted as received.
            let st = rx.stats().unwrap();
            assert_eq!(
                st.received,
                want.len() as u64,
                "{backend} {which:?}: {st:?}"
            );
        }
    }
}

/// The test frames a receiver gets within `limit`, as (sequence number, direction), sorted.
fn collect_directions(rx: &mut Receiver, limit: Duration) -> Vec<(u32, Direction)> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
        for p in &batch {
            if let Some(seq) = frame_seq(p.data()) {
                got.push((seq, p.direction()));
            }
        }
    }
    got.sort_by_key(|g| g.0);
    got
}

/// On loopback every packet is both sent and received: a capture sees each once (the received
/// copy), as tcpdump does; `Out` sees the sent copy instead.
#[test]
fn loopback_shows_each_packet_once() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, _veth) = setup();
    let to_9999 = |p: &fastpath::Packet<'_>| {
        let d = p.data();
        d.len() >= 38 && d[12..14] == [8, 0] && d[23] == 17 && d[36..38] == [0x27, 0x0f]
    };
    for backend in AF_PACKET_BACKENDS {
        for (which, want) in [
            (CaptureDirection::InOut, Direction::Host),
            (CaptureDirection::In, Direction::Host),
            (CaptureDirection::Out, Direction::Outgoing),
        ] {
            let cfg = Config::new("lo").backend(backend).direction(which);
            let mut rx = Receiver::open(&cfg).unwrap();
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..3u8 {
                sock.send_to(&[i; 3], "127.0.0.1:9999").unwrap();
            }
            let deadline = Instant::now() + Duration::from_millis(300);
            let mut dirs = Vec::new();
            while Instant::now() < deadline {
                let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
                dirs.extend(batch.iter().filter(to_9999).map(|p| p.direction()));
            }
            assert_eq!(dirs, vec![want; 3], "{backend} {which:?}");
        }
    }
}

/// After `stop_intake` the kernel queues and counts nothing new, and what was queued can still
/// be read: once it is drained, delivered + dropped == received exactly, however much traffic
/// follows.
#[test]
fn stop_intake_then_drain_makes_the_counts_add_up() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    let before: Vec<_> = (0..200)
        .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
        .collect();
    let after: Vec<_> = (200..400)
        .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
        .collect();
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
        let tx = RawSender::new(&veth.a).unwrap();
        tx.send_all(&before).unwrap();
        // Let them land in the ring or socket, unread.
        std::thread::sleep(Duration::from_millis(100));
        let wait = rx.stop_intake().unwrap();
        tx.send_all(&after).unwrap();
        let mut seqs = Vec::new();
        loop {
            let batch = rx.recv(Some(wait.max(Duration::from_millis(50)))).unwrap();
            if batch.is_empty() {
                break;
            }
            seqs.extend(batch.iter().filter_map(|p| frame_seq(p.data())));
        }
        assert_eq!(seqs, (0..200).collect::<Vec<_>>(), "{backend}");
        let st = rx.stats().unwrap();
        assert_eq!(st.delivered, 200, "{backend}: {st:?}");
        assert_eq!(st.delivered + st.dropped, st.received, "{backend}: {st:?}");
        assert_eq!(
            st.received, 200,
            "{backend}: nothing after the stop: {st:?}"
        );
    }
}
