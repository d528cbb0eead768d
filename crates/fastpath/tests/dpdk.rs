//! Tier 1 for rung 3: real frames cross a veth pair in a private network namespace and the
//! `dpdk` backend, on DPDK's net_af_packet virtual device, must deliver exactly them (same bytes,
//! same order, right lengths), transmit, and report faults by name. Needs root and the system
//! DPDK (`--features dpdk`); with `FASTPATH_REQUIRE_PRIV=1` (CI) a missing privilege fails.
//!
//! The EAL starts once per process and is never torn down: the tests share it, one at a time
//! (`serial`). Each test makes its own namespace; a device is attached (`rte_dev_probe`) on the
//! test's thread, so its AF_PACKET socket lives in that namespace, and detached when its last
//! handle drops, so the next test can attach the same name again.
#![cfg(feature = "dpdk")]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fastpath::{Backend, Config, Direction, DpdkConfig, Error, Receiver};
use fastpath_testutil::{
    assert_frames_eq, is_root, require, udp_frame, udp_frames, NetNs, RawReceiver, RawSender, Veth,
    DST_MAC,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn setup() -> (NetNs, Veth) {
    let ns = NetNs::new("fpd");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth)
}

fn vdev(n: u32, iface: &str) -> String {
    format!("net_af_packet{n},iface={iface},blocksz=4096,framesz=2048,framecnt=4096")
}

fn dpdk_cfg(dev: &str) -> Config {
    Config::new(dev).backend(Backend::Dpdk)
}

mod common;
use common::{collect, wait_error};

#[test]
fn af_packet_vdev_delivers_the_frames_byte_exact_in_order() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let _s = serial();
    let (_ns, veth) = setup();
    let mut rx = Receiver::open(&dpdk_cfg(&vdev(0, &veth.b))).expect("open dpdk");
    assert_eq!(rx.backend(), Backend::Dpdk);
    let caps = rx.capabilities();
    assert_eq!(caps.mode, "dpdk net_af_packet");
    assert!(caps.zero_copy && caps.tx);
    assert_eq!(rx.queue(), Some(0));

    let sent = udp_frames(300, veth.a_mac);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
    let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
    assert_frames_eq(&data, &sent);
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g.orig_len as usize, s.len(), "orig_len");
        assert_eq!(g.queue, Some(0), "queue");
        // To DST_MAC, not the port's address: seen in promiscuous mode.
        assert_eq!(g.direction, Direction::OtherHost, "direction");
    }
    // To the port's own address and to broadcast.
    let mine = [
        udp_frame(1000, 80, veth.b_mac, veth.a_mac),
        udp_frame(1001, 80, [0xff; 6], veth.a_mac),
    ];
    RawSender::new(&veth.a).unwrap().send_all(&mine).unwrap();
    let got = collect(&mut rx, 2, Duration::from_secs(5));
    let dirs: Vec<Direction> = got.iter().map(|g| g.direction).collect();
    assert_eq!(dirs, [Direction::Host, Direction::Broadcast]);
    let st = rx.stats().unwrap();
    assert!(st.received >= sent.len() as u64, "{st:?}");
    assert!(st.delivered >= sent.len() as u64, "{st:?}");
    assert_eq!(st.dropped, 0, "{st:?}");

    // Snapshot length: cut, original length kept.
    drop(rx);
    let mut rx = Receiver::open(&dpdk_cfg(&vdev(0, &veth.b)).snaplen(64)).expect("reopen");
    let sent = udp_frames(20, veth.a_mac);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    let got = collect(&mut rx, sent.len(), Duration::from_secs(5));
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g.data, &s[..s.len().min(64)]);
        assert_eq!(g.orig_len as usize, s.len());
    }
}

#[test]
fn send_reaches_the_peer_byte_exact() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let _s = serial();
    let (_ns, veth) = setup();
    let mut rx = Receiver::open(&dpdk_cfg(&vdev(0, &veth.b))).expect("open dpdk");
    let peer = RawReceiver::new(&veth.a).unwrap();
    let sent: Vec<Vec<u8>> = (0..100)
        .map(|s| udp_frame(s, 60 + s as usize * 14, DST_MAC, veth.b_mac))
        .collect();
    let refs: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while done < refs.len() && Instant::now() < deadline {
        done += rx.send(&refs[done..]).expect("send");
    }
    assert_eq!(done, refs.len());
    assert_eq!(rx.flush().unwrap(), 0);
    let got = peer.collect(sent.len(), Duration::from_secs(5)).unwrap();
    assert_frames_eq(&got, &sent);

    // Bad frames are refused, not sent.
    let e = rx.send(&[&[0u8; 10][..]]).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
}

#[test]
fn one_eal_serves_several_devices_and_reopens() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let _s = serial();
    let (ns, v1) = setup();
    let v2 = ns.veth_pair("fpc", "fpe");
    let mut r1 = Receiver::open(&dpdk_cfg(&vdev(0, &v1.b))).expect("open first");
    let mut r2 = Receiver::open(&dpdk_cfg(&vdev(1, &v2.b))).expect("open second");
    assert_ne!(r1.ifindex(), r2.ifindex(), "two ports");

    // The same queue of the same device cannot be taken twice.
    let e = Receiver::open(&dpdk_cfg(&vdev(0, &v1.b))).unwrap_err();
    assert!(
        matches!(e, Error::InvalidConfig { field: "queue", .. }),
        "{e}"
    );

    for (rx, v) in [(&mut r1, &v1), (&mut r2, &v2)] {
        let sent = udp_frames(50, v.a_mac);
        RawSender::new(&v.a).unwrap().send_all(&sent).unwrap();
        let got = collect(rx, sent.len(), Duration::from_secs(5));
        let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
        assert_frames_eq(&data, &sent);
    }

    // Dropping the last handle detaches the device; it can be attached again at once.
    drop(r1);
    let mut r1 = Receiver::open(&dpdk_cfg(&vdev(0, &v1.b))).expect("reopen");
    let sent = udp_frames(30, v1.a_mac);
    RawSender::new(&v1.a).unwrap().send_all(&sent).unwrap();
    let got = collect(&mut r1, sent.len(), Duration::from_secs(5));
    assert_eq!(
        got.len(),
        sent.len(),
        "after reopen, nothing stale and nothing lost"
    );
    let data: Vec<&[u8]> = got.iter().map(|g| g.data.as_slice()).collect();
    assert_frames_eq(&data, &sent);
}

#[test]
fn null_vdev_generates_packets() {
    require!(is_root(), "needs root for DPDK");
    let _s = serial();
    let _ns = NetNs::new("fpd");
    let mut rx = Receiver::open(&dpdk_cfg("net_null0").batch_size(32)).expect("open net_null");
    assert_eq!(rx.capabilities().mode, "dpdk net_null");
    let batch = rx.recv(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(batch.len(), 32, "net_null fills every burst");
    for p in &batch {
        assert_eq!(p.data().len(), 64, "net_null's default packet size");
    }
    drop(batch);
    let st = rx.stats().unwrap();
    assert_eq!(st.delivered, 32);
}

#[test]
fn faults_are_named() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let _s = serial();
    let (ns, veth) = setup();

    // Not a DPDK device: the message says how to name one.
    let e = Receiver::open(&dpdk_cfg("eth0")).unwrap_err();
    assert!(e.to_string().contains("net_af_packet0,iface=eth0"), "{e}");
    // The kernel interface does not exist.
    let e = Receiver::open(&dpdk_cfg("net_af_packet0,iface=nosuch0")).unwrap_err();
    assert!(matches!(e, Error::NoSuchInterface { .. }), "{e}");
    // Out-of-range ring size.
    let e = Receiver::open(&dpdk_cfg(&vdev(0, &veth.b)).dpdk(DpdkConfig::default().ring_size(16)))
        .unwrap_err();
    assert!(e.is_usage(), "{e}");

    // The interface disappears while capturing: a named error, counters kept.
    let mut rx = Receiver::open(&dpdk_cfg(&vdev(0, &veth.b))).expect("open");
    let sent = udp_frames(10, veth.a_mac);
    RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
    assert_eq!(collect(&mut rx, 10, Duration::from_secs(5)).len(), 10);
    let before = rx.stats().unwrap();
    ns.set_down(&veth.b).unwrap();
    let e = wait_error(&mut rx, Duration::from_secs(2)).expect("no error within 2 s");
    assert!(
        matches!(&e, Error::InterfaceDown { name } if *name == veth.b),
        "{e}"
    );
    ns.ip(&["link", "del", "dev", &veth.b]).unwrap();
    let e = wait_error(&mut rx, Duration::from_secs(2)).expect("no error within 2 s");
    assert!(
        matches!(&e, Error::InterfaceGone { name } if *name == veth.b),
        "{e}"
    );
    let after = rx.stats().unwrap();
    assert!(
        after.delivered >= 10 && after.received >= before.received,
        "{after:?}"
    );
}
