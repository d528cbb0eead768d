//! Tier 1 for rung 4 through the public API: frames cross a veth pair in a private namespace
//! into an AF_XDP socket (copy mode: veth has no zero-copy), byte-exact and in order; several
//! queues share one UMEM; TX reaches the peer; the take-everything guard; and nothing stays
//! attached afterwards.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fastpath::unstable::bpf::{attached, Mode};
use fastpath::{
    Backend, CaptureDirection, Config, Direction, Error, Filter, Receiver, XdpConfig, ZeroCopy,
};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, is_root, require, udp_frame, udp_frames, NetNs, RawSender, DST_MAC,
};

mod common;
use common::collect;

fn nothing_attached(ifindex: u32) -> bool {
    attached(ifindex).unwrap().is_empty()
}

#[test]
fn xdp_delivers_the_frames_byte_exact_in_order_and_detaches() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp)).unwrap();
        let caps = rx.capabilities();
        assert_eq!(caps.mode, "af_xdp copy", "veth has no AF_XDP zero-copy");
        // Receive only by default: no TX ring (XdpConfig::tx_size).
        assert!(!caps.driver_zero_copy && caps.zero_copy && !caps.tx);
        assert_eq!(rx.queue(), Some(0));
        assert_eq!(rx.xdp_mode(), Some(Mode::Native));
        assert!(
            !nothing_attached(veth.b_index),
            "program attached while open"
        );
        for round in 0..2 {
            // Two rounds: frames handed back through the fill ring are reused correctly.
            let sent = udp_frames(300, veth.a_mac);
            RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
            let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
            let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
            assert_frames_eq(&data, &sent);
            for (g, s) in got.iter().zip(&sent) {
                assert_eq!(g.orig_len as usize, s.len(), "round {round}: orig_len");
                assert_eq!(g.queue, Some(0), "queue");
            }
        }
        let st = rx.stats().unwrap();
        assert_eq!(st.delivered, 600, "{st:?}");
        assert_eq!(st.dropped, 0, "{st:?}");
    }
    assert!(
        nothing_attached(veth.b_index),
        "dropping the receiver detaches the program"
    );
}

#[test]
fn xdp_snaplen_multi_queue_and_tx() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair_queues("fpa", "fpb", 2);
    let one = ns.veth_pair("fpc", "fpd");

    // Snaplen is applied, the original length kept.
    {
        let mut rx =
            Receiver::open(&Config::new(&one.b).backend(Backend::Xdp).snaplen(64)).unwrap();
        let sent = udp_frames(50, one.a_mac);
        RawSender::new(&one.a).unwrap().send_all(&sent).unwrap();
        let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
        assert_eq!(got.len(), sent.len());
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.data, &s[..s.len().min(64)]);
            assert_eq!(g.orig_len as usize, s.len());
        }
    }

    // Two queues, one UMEM, one program: every frame arrives exactly once on some queue.
    {
        let cfg = Config::new(&veth.b).backend(Backend::Xdp);
        assert_eq!(fastpath::rx_queue_count(&veth.b).unwrap(), 2);
        let mut rxs = fastpath::open_queues(&cfg, &[0, 1]).unwrap();
        assert_eq!(rxs[0].queue(), Some(0));
        assert_eq!(rxs[1].queue(), Some(1));
        let sent = udp_frames(300, veth.a_mac);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.len() < sent.len() && Instant::now() < deadline {
            for rx in &mut rxs {
                for g in collect(rx, 1, Duration::from_millis(10)) {
                    let seq = frame_seq(&g.data).unwrap();
                    assert_eq!(
                        g.data, sent[seq as usize],
                        "byte-exact on queue {:?}",
                        g.queue
                    );
                    assert!(seen.insert(seq), "frame {seq} twice");
                }
            }
        }
        assert_eq!(seen.len(), sent.len());
        drop(rxs.pop());
        assert!(
            !nothing_attached(veth.b_index),
            "the other queue still holds the program"
        );
        drop(rxs);
        assert!(nothing_attached(veth.b_index));
    }

    // TX: frames sent through the AF_XDP TX ring on `a` arrive byte-exact on `b`.
    {
        let veth = one;
        // Receive-only by default: no TX ring, `send` says how to get one.
        let mut rx_only = Receiver::open(&Config::new(&veth.a).backend(Backend::Xdp)).unwrap();
        assert!(!rx_only.capabilities().tx);
        let err = rx_only.send(&[&[0u8; 60][..]]).unwrap_err();
        assert!(err.to_string().contains("tx_size"), "{err}");
        drop(rx_only);
        let mut x = XdpConfig::default();
        x.tx_size = 2048;
        let mut tx = Receiver::open(&Config::new(&veth.a).backend(Backend::Xdp).xdp(x)).unwrap();
        assert!(tx.capabilities().tx);
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Mmap)).unwrap();
        let sent: Vec<_> = (0..100)
            .map(|s| udp_frame(s, 60 + s as usize * 7, DST_MAC, veth.a_mac))
            .collect();
        let refs: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
        let mut queued = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while queued < refs.len() && Instant::now() < deadline {
            queued += tx.send(&refs[queued..]).unwrap();
            tx.flush().unwrap();
        }
        while tx.flush().unwrap() > 0 && Instant::now() < deadline {}
        let got: Vec<Vec<u8>> = collect(&mut rx, sent.len(), Duration::from_secs(5))
            .into_iter()
            .map(|g| g.data)
            .collect();
        assert_frames_eq(&got, &sent);
        let err = Receiver::open(&Config::new(&veth.b).backend(Backend::Mmap))
            .unwrap()
            .send(&refs[..1])
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }
}

#[test]
fn xdp_refuses_to_take_a_used_interface_and_names_conflicts() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", &veth.b])
        .unwrap();
    let err = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp)).unwrap_err();
    assert!(matches!(err, Error::WouldTakeTraffic { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("10.77.0.1") && msg.contains("--take"), "{msg}");
    assert!(nothing_attached(veth.b_index));
    // A filter takes every packet it accepts (`tcp`: SSH too): --take all the same.
    let err = Receiver::open(
        &Config::new(&veth.b)
            .backend(Backend::Xdp)
            .filter(Filter::new("tcp").unwrap()),
    )
    .unwrap_err();
    assert!(matches!(err, Error::WouldTakeTraffic { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("the filter `tcp` accepts") && msg.contains("--take"),
        "{msg}"
    );
    assert!(nothing_attached(veth.b_index));
    let rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).take(true)).unwrap();

    // A second program on the same interface is refused, naming the first.
    let err = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).take(true)).unwrap_err();
    assert!(matches!(err, Error::XdpAlreadyAttached { .. }), "{err}");
    assert!(err.to_string().contains("fastpath_redir"), "{err}");
    drop(rx);

    // Queue out of range, zero-copy required on veth, ring not a power of two.
    let err = Receiver::open(
        &Config::new(&veth.b)
            .backend(Backend::Xdp)
            .take(true)
            .queue(5),
    )
    .unwrap_err();
    assert!(err.to_string().contains("queue 5"), "{err}");
    let mut x = XdpConfig::default();
    x.zero_copy = ZeroCopy::Require;
    let err =
        Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).take(true).xdp(x)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    // Busy polling cannot reach a copy-mode socket (no NAPI id): refused, not faked.
    let mut x = XdpConfig::default();
    x.busy_poll = Some((20, 64));
    let err =
        Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).take(true).xdp(x)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("NAPI id"), "{err}");
    let mut x = XdpConfig::default();
    x.rx_size = 3000;
    let err =
        Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).take(true).xdp(x)).unwrap_err();
    assert!(err.is_usage() && err.to_string().contains("4096"), "{err}");
    assert!(nothing_attached(veth.b_index));
}

#[test]
fn xdp_lone_packets_arrive_within_two_ms_also_after_a_burst() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    // Coalescing on: after the burst the receive loop is in its "busy" state (it naps when the
    // ring runs empty) when the lone packets come.
    let mut x = XdpConfig::default();
    x.coalesce = true;
    let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp).xdp(x)).unwrap();
    let tx = RawSender::new(&veth.a).unwrap();
    let burst = udp_frames(600, veth.a_mac);
    tx.send_all(&burst).unwrap();
    assert_eq!(
        collect(&mut rx, burst.len(), Duration::from_secs(5)).len(),
        burst.len()
    );
    let mut lat = Vec::new();
    for s in 0..30 {
        let f = udp_frames(1, veth.a_mac).pop().unwrap();
        let t0 = Instant::now();
        tx.send(&f).unwrap();
        let got = collect(&mut rx, 1, Duration::from_secs(2));
        assert_eq!(got.len(), 1, "lone packet {s}");
        lat.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(3));
    }
    lat.sort();
    let median = lat[lat.len() / 2];
    eprintln!(
        "xdp single-packet latency: median {median:?}, max {:?}",
        lat[lat.len() - 1]
    );
    assert!(
        median < Duration::from_millis(2),
        "median latency {median:?}"
    );
}

/// `-b xdp` honours promiscuous mode like the other rungs (on by default, held by the port and
/// dropped with it), gives each packet its direction from the destination MAC address, and
/// refuses to capture only sent packets, which it never sees.
#[test]
fn xdp_promiscuous_mode_and_direction() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let promiscuity = || {
        let out = std::process::Command::new("ip")
            .args(["-d", "link", "show", "dev", &veth.b])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let n = text
            .split_whitespace()
            .skip_while(|w| *w != "promiscuity")
            .nth(1)
            .unwrap_or_else(|| panic!("no promiscuity in {text}"))
            .parse::<u32>()
            .unwrap();
        n
    };
    assert_eq!(promiscuity(), 0);
    {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp)).unwrap();
        assert_eq!(promiscuity(), 1, "promiscuous while capturing");
        let sent: Vec<Vec<u8>> = (0..9u32)
            .map(|s| {
                let dst = match s % 3 {
                    0 => veth.b_mac,
                    1 => [0xff; 6],
                    _ => DST_MAC,
                };
                udp_frame(s, 80, dst, veth.a_mac)
            })
            .collect();
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let mut dirs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while dirs.len() < 9 && Instant::now() < deadline {
            let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
            dirs.extend(
                batch
                    .iter()
                    .filter(|p| frame_seq(p.data()).is_some())
                    .map(|p| p.direction()),
            );
        }
        let want: Vec<Direction> = (0..9)
            .map(|s| match s % 3 {
                0 => Direction::Host,
                1 => Direction::Broadcast,
                _ => Direction::OtherHost,
            })
            .collect();
        assert_eq!(dirs, want);
    }
    assert_eq!(promiscuity(), 0, "dropped with the receiver");
    {
        let _rx = Receiver::open(
            &Config::new(&veth.b)
                .backend(Backend::Xdp)
                .promiscuous(false),
        )
        .unwrap();
        assert_eq!(promiscuity(), 0, "-p: not promiscuous");
    }
    let err = Receiver::open(
        &Config::new(&veth.b)
            .backend(Backend::Xdp)
            .direction(CaptureDirection::Out),
    )
    .unwrap_err();
    assert!(err.is_usage() && err.to_string().contains("out"), "{err}");
    assert!(nothing_attached(veth.b_index));
}

/// `stop_intake` on an AF_XDP queue: its frames go back to the kernel stack, what is on the RX
/// ring is still read, and the counters then add up (`received` includes what waits on the
/// ring until it is read).
#[test]
fn xdp_stop_intake_then_drain_makes_the_counts_add_up() {
    require!(
        is_root(),
        "needs root for network namespaces, XDP and AF_XDP"
    );
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let before: Vec<_> = (0..200)
        .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
        .collect();
    let after: Vec<_> = (200..400)
        .map(|s| udp_frame(s, 100, DST_MAC, veth.a_mac))
        .collect();
    let mut rx = Receiver::open(&Config::new(&veth.b).backend(Backend::Xdp)).unwrap();
    let tx = RawSender::new(&veth.a).unwrap();
    tx.send_all(&before).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let st = rx.stats().unwrap();
    assert_eq!(
        st.received, 200,
        "waiting on the ring counts as received: {st:?}"
    );
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
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    let st = rx.stats().unwrap();
    assert_eq!(
        (st.delivered, st.received, st.dropped),
        (200, 200, 0),
        "{st:?}"
    );
}
