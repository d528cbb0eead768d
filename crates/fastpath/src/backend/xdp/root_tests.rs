//! Tier 1: root, a private network namespace and a veth pair, real kernel.
//!
//! These live in the crate (not in `tests/`) because the xdp backend is crate-private until it
//! is wired into `Receiver`; they use only `fastpath_testutil` besides this module.

use super::port::open_queues;
use super::*;
use crate::bpf;
use crate::config::{XdpConfig, ZeroCopy};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, is_root, require, udp_frame, NetNs, RawReceiver, RawSender, Veth,
    DST_MAC,
};
use std::time::Instant;

fn small() -> XdpConfig {
    XdpConfig {
        frame_count: 4096,
        rx_size: 1024,
        fill_size: 2048,
        tx_size: 512,
        comp_size: 512,
        ..XdpConfig::default()
    }
}

fn frames(n: u32, veth: &Veth) -> Vec<Vec<u8>> {
    // Sizes sweep 60..=1514.
    (0..n)
        .map(|s| udp_frame(s, 60 + (s as usize * 97) % 1455, DST_MAC, veth.a_mac))
        .collect()
}

/// Receives until `n` packets arrived on any socket or `timeout` passed.
fn collect(socks: &mut [XskSocket], n: usize, timeout: Duration) -> Vec<(u32, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        for s in socks.iter_mut() {
            let b = s.receive(Some(Duration::from_millis(5))).expect("receive");
            for p in &b {
                assert_eq!(p.orig_len() as usize, p.data().len());
                assert!(p.timestamp_ns() > 0);
                got.push((
                    p.queue().expect("AF_XDP knows the queue"),
                    p.data().to_vec(),
                ));
            }
        }
    }
    got
}

fn no_xdp_left(ns: &NetNs, veth: &Veth) {
    for (name, idx) in [(&veth.a, veth.a_index), (&veth.b, veth.b_index)] {
        assert!(
            bpf::attached(idx).unwrap().is_empty(),
            "program left on {name}"
        );
        let out = ns
            .exec("ip", ["-o", "link", "show", name.as_str()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("xdp"), "ip link still shows xdp: {text}");
    }
}

#[test]
fn rx_copy_mode_byte_exact_in_order() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    {
        let mut port =
            XdpPort::open(veth.b_index, &[0], &small(), Mode::Native, false).expect("open");
        let s = &port.sockets()[0];
        assert!(!s.zero_copy(), "veth has no zero-copy AF_XDP");
        assert_eq!(s.mode_name(), "af_xdp copy");
        assert!(s.need_wakeup());
        eprintln!(
            "mode {}, hugetlb UMEM {}, fill need_wakeup {}, tx need_wakeup {}",
            s.mode_name(),
            s.umem_hugetlb(),
            s.fill.needs_wakeup(),
            s.tx.as_ref().is_some_and(|t| t.needs_wakeup())
        );
        let sent = frames(300, &veth);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let got = collect(port.sockets_mut(), sent.len(), Duration::from_secs(5));
        assert!(got.iter().all(|(q, _)| *q == 0));
        let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
        assert_frames_eq(&data, &sent);
        let st = port.stats().unwrap();
        eprintln!("{st:?}");
        assert_eq!(st.delivered, 300);
        assert_eq!(
            (st.rx_ring_full, st.rx_invalid_descs, st.rejected_descs),
            (0, 0, 0)
        );

        // Frames were recycled: a second round through the same fill ring works.
        let again = frames(300, &veth);
        RawSender::new(&veth.a).unwrap().send_all(&again).unwrap();
        let got = collect(port.sockets_mut(), again.len(), Duration::from_secs(5));
        let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
        assert_frames_eq(&data, &again);
    }
    no_xdp_left(&ns, &veth);
}

#[test]
fn snaplen_is_applied() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let cfg = Config::new(&veth.b).snaplen(64).xdp(small());
    let mut port = XdpPort::open_config(&cfg, veth.b_index, &[0]).unwrap();
    let sent = frames(20, &veth);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while n < sent.len() && Instant::now() < deadline {
        let b = port.sockets_mut()[0]
            .receive(Some(Duration::from_millis(50)))
            .unwrap();
        for p in &b {
            let s = &sent[n];
            assert_eq!(p.orig_len() as usize, s.len());
            assert_eq!(p.data(), &s[..s.len().min(64)]);
            n += 1;
        }
    }
    assert_eq!(n, sent.len());
}

#[test]
fn zero_copy_required_on_veth_fails_clearly() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let cfg = XdpConfig {
        zero_copy: ZeroCopy::Require,
        ..small()
    };
    let e = XdpPort::open(veth.b_index, &[0], &cfg, Mode::Native, false).unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert!(msg.contains("zero-copy") && msg.contains("fpb"), "{msg}");
    // The failed open left nothing attached, and copy mode works right after.
    no_xdp_left(&ns, &veth);
    let cfg = XdpConfig {
        zero_copy: ZeroCopy::Never,
        ..small()
    };
    let port = XdpPort::open(veth.b_index, &[0], &cfg, Mode::Native, false).unwrap();
    assert_eq!(port.sockets()[0].mode_name(), "af_xdp copy");
}

#[test]
fn bad_queue_and_foreign_program_are_named() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let e = XdpPort::open(veth.b_index, &[3], &small(), Mode::Native, false).unwrap_err();
    assert!(
        matches!(e, Error::InvalidConfig { field: "queue", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("0 to 0"), "{e}");
    let e = XdpPort::open(veth.b_index, &[0, 0], &small(), Mode::Native, false).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");

    let pass = bpf::XdpProgram::pass().unwrap();
    let other = bpf::XdpAttachment::attach(&pass, veth.b_index, Mode::Native, false).unwrap();
    let e = XdpPort::open(veth.b_index, &[0], &small(), Mode::Native, false).unwrap_err();
    assert!(matches!(e, Error::XdpAlreadyAttached { .. }), "{e:?}");
    drop(other);
    no_xdp_left(&ns, &veth);
}

#[test]
fn second_socket_on_a_queue_is_busy() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let _first = open_queues(veth.b_index, &[0], &small()).unwrap();
    let e = open_queues(veth.b_index, &[0], &small()).unwrap_err();
    assert!(matches!(e, Error::XdpQueueBusy { queue: 0, .. }), "{e:?}");
}

#[test]
fn two_queues_share_one_umem() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair_queues("fpa", "fpb", 2);
    {
        let mut port = XdpPort::open(veth.b_index, &[0, 1], &small(), Mode::Native, false).unwrap();
        let socks = port.sockets();
        assert_eq!(socks.len(), 2);
        assert_eq!((socks[0].queue(), socks[1].queue()), (0, 1));
        assert!(Arc::ptr_eq(&socks[0].umem, &socks[1].umem), "one UMEM");
        assert_eq!(
            socks[1].mode_name(),
            "af_xdp copy",
            "inherited from the UMEM owner"
        );
        assert!(socks[1].need_wakeup(), "inherited from the UMEM owner");

        let sent = frames(300, &veth);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let mut got = collect(port.sockets_mut(), sent.len(), Duration::from_secs(5));
        let per_q = [0, 1].map(|q| got.iter().filter(|(g, _)| *g == q).count());
        eprintln!("frames per queue: {per_q:?}");
        got.sort_by_key(|(_, d)| frame_seq(d));
        let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
        assert_frames_eq(&data, &sent);
        let st = port.stats().unwrap();
        assert_eq!(st.delivered, 300);
    }
    no_xdp_left(&ns, &veth);
}

#[test]
fn tx_byte_exact() {
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    let veth = ns.veth_pair("fpa", "fpb");
    let rx = RawReceiver::new(&veth.b).unwrap();
    let mut socks = open_queues(veth.a_index, &[0], &small()).unwrap();
    let s = &mut socks[0];
    let sent = frames(100, &veth);
    let refs: Vec<&[u8]> = sent.iter().map(|f| f.as_slice()).collect();
    let mut queued = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while queued < refs.len() && Instant::now() < deadline {
        queued += s.send(&refs[queued..]).unwrap();
    }
    assert_eq!(queued, refs.len());
    while s.flush().unwrap() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(s.flush().unwrap(), 0, "every frame completed");
    let got = rx.collect(sent.len(), Duration::from_secs(5)).unwrap();
    assert_frames_eq(&got, &sent);
    let st = s.stats().unwrap();
    assert_eq!(st.tx_invalid_descs, 0);
    // Oversized frames are refused before anything is queued.
    let big = vec![0u8; 4097];
    assert!(matches!(
        s.send(&[&big]),
        Err(Error::InvalidConfig { field: "frame", .. })
    ));
}

/// The receive-timestamp metadata path: a program that writes a known stamp in front of each
/// frame, and packets that carry it as a hardware stamp; then the real kfunc program on veth
/// (whose frames have no hardware stamp): loaded device-bound, packets byte-exact, stamped per
/// batch.
#[test]
fn receive_timestamps_from_xdp_metadata() {
    require!(is_root(), "needs root for namespaces, XDP and AF_XDP");
    let ns = NetNs::new("fpxts");
    let veth = ns.veth_pair("fpa", "fpb");
    let tx = RawSender::new(&veth.a).unwrap();
    let sent = frames(64, &veth);
    let cfg = Config::new(&veth.b).backend(Backend::Xdp);
    super::port::FIXED_STAMP.with(|c| c.set(Some(0x1234_5678)));
    let opened = open(&cfg, &[0]);
    super::port::FIXED_STAMP.with(|c| c.set(None));
    let mut q = opened.unwrap();
    assert!(q[0].capabilities().hardware_timestamps);
    tx.send_all(&sent).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < sent.len() && Instant::now() < deadline {
        let b = q[0].receive(Some(Duration::from_millis(20))).unwrap();
        for p in &b {
            assert_eq!(p.timestamp_ns(), 0x1234_5678);
            assert_eq!(p.timestamp_source(), crate::TimestampSource::Hardware);
            got.push(p.data().to_vec());
        }
    }
    assert_frames_eq(&got, &sent);
    drop(q);

    let adapter = cfg.clone().timestamps(crate::TimestampType::Adapter);
    let kfunc = bpf::btf::rx_timestamp_kfunc();
    require!(
        kfunc.is_some(),
        "no kfunc bpf_xdp_metadata_rx_timestamp in this kernel"
    );
    let mut q = open(&adapter, &[0]).expect("device-bound program with the timestamp kfunc");
    assert!(q[0].capabilities().hardware_timestamps);
    tx.send_all(&sent).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < sent.len() && Instant::now() < deadline {
        let b = q[0].receive(Some(Duration::from_millis(20))).unwrap();
        for p in &b {
            // veth reports the skb's hardware stamp, which frames from a packet socket lack.
            assert_eq!(p.timestamp_source(), crate::TimestampSource::Batch);
            assert!(p.timestamp_ns() > 0);
            got.push(p.data().to_vec());
        }
    }
    assert_frames_eq(&got, &sent);
    drop(q);
    // Generic mode cannot read the driver's metadata: refused, with the fix.
    let err = open(&adapter.clone().xdp_attach(crate::XdpMode::Generic), &[0]).unwrap_err();
    assert!(err.to_string().contains("native"), "{err}");
}

/// What the kernel writes into the rings is checked before it is used: a completion for a frame
/// the socket never sent, an RX descriptor outside the socket's frames, a producer index more
/// than a ring ahead. Each is an error naming the ring (the socket stays failed), never a
/// frame used twice or read while the kernel may write it.
#[test]
#[allow(unsafe_code)] // plays the kernel's producer (`forge`), with the kernel idle
fn impossible_ring_values_are_errors() {
    use crate::backend::RungBatch;
    require!(is_root(), "needs root for network namespaces and AF_XDP");
    let ns = NetNs::new("fpx");
    // One pair per case: a closed socket releases its queue asynchronously.
    let pairs = [
        ns.veth_pair("fpa", "fpb"),
        ns.veth_pair("fpc", "fpd"),
        ns.veth_pair("fpe", "fpf"),
    ];
    let kernel_ring =
        |e: &Error, ring: &str| matches!(e, Error::KernelRing { ring: r, .. } if *r == ring);
    // A completion of an RX frame: never sent.
    {
        let mut socks = open_queues(pairs[0].b_index, &[0], &small()).expect("open");
        let s = &mut socks[0];
        let rx_frame = s.rx_base;
        // SAFETY: nothing was sent on this socket: the kernel produces no completion.
        unsafe { s.comp.forge(rx_frame) };
        let e = s.flush().unwrap_err();
        assert!(kernel_ring(&e, "AF_XDP completion ring"), "{e}");
        assert!(e.to_string().contains("not sending"), "{e}");
        let e = s.send(&[&[0u8; 60]]).unwrap_err();
        assert!(
            kernel_ring(&e, "AF_XDP completion ring"),
            "stays failed: {e}"
        );
        let e = s.receive(Some(Duration::ZERO)).unwrap_err();
        assert!(kernel_ring(&e, "AF_XDP completion ring"), "{e}");
    }
    // An RX descriptor naming one of the socket's TX frames: the batch lends nothing, the next
    // receive fails.
    {
        let mut socks = open_queues(pairs[1].b_index, &[0], &small()).expect("open");
        let s = &mut socks[0];
        let tx_frame = s.tx_base;
        let desc = crate::sys::xdp::xdp_desc {
            addr: tx_frame,
            len: 60,
            options: 0,
        };
        // SAFETY: no XDP program redirects to this socket: the kernel produces no RX entry.
        unsafe { s.rx.forge(desc) };
        {
            let b = s.receive(Some(Duration::ZERO)).expect("the batch itself");
            assert_eq!(b.len(), 1);
            assert_eq!(b.iter().count(), 0, "the descriptor is not lent");
        }
        let e = s.receive(Some(Duration::ZERO)).unwrap_err();
        assert!(kernel_ring(&e, "AF_XDP rx ring"), "{e}");
        assert!(e.to_string().contains("outside the socket's frames"), "{e}");
    }
    // A producer index more than a ring ahead.
    {
        let mut socks = open_queues(pairs[2].b_index, &[0], &small()).expect("open");
        let s = &mut socks[0];
        s.rx.forge_producer(small().rx_size + 1);
        let e = s.receive(Some(Duration::ZERO)).unwrap_err();
        assert!(kernel_ring(&e, "AF_XDP rx ring"), "{e}");
        assert!(s.stats().is_err(), "the counters do not trust it either");
    }
}
