//! Tier 1: the everyday-capture features of the library on a veth pair in a private network
//! namespace: `any` (every interface, each packet naming its own), and timestamp types
//! (`-j host` / `-j adapter`: a clear error where the NIC has no hardware stamps, the source of
//! each packet's stamp).

use std::time::Duration;

use fastpath::{
    Backend, CaptureDirection, Config, Direction, Error, Receiver, TimestampSource, TimestampType,
};
use fastpath_testutil::{frame_seq, is_root, require, udp_frames, NetNs, RawSender, Veth};

mod common;
use common::collect;

const AF_PACKET_BACKENDS: [Backend; 3] = [Backend::Recv, Backend::RecvBatch, Backend::Mmap];

fn setup() -> (NetNs, Veth) {
    let ns = NetNs::new("fpe");
    let veth = ns.veth_pair("fpa", "fpb");
    (ns, veth)
}

/// `any` sees a frame leave one end of the pair and arrive at the other, and says which is
/// which; packets of non-Ethernet devices never reach it.
#[test]
fn any_sees_every_interface_and_names_it() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in AF_PACKET_BACKENDS {
        let mut rx = Receiver::open(&Config::new("any").backend(backend)).expect("open any");
        assert_eq!(rx.ifindex(), 0);
        let sent = udp_frames(40, veth.a_mac);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let got = collect(&mut rx, 2 * sent.len(), Duration::from_secs(5));
        assert_eq!(got.len(), 2 * sent.len(), "{backend}: out on a, in on b");
        for ifindex in [veth.a_index, veth.b_index] {
            let on: Vec<&[u8]> = got
                .iter()
                .filter(|g| g.ifindex == ifindex)
                .map(|g| g.data.as_slice())
                .collect();
            fastpath_testutil::assert_frames_eq(&on, &sent);
        }
    }
}

/// `any` with loopback traffic: each packet once (the received copy), as on `lo` itself and as
/// libpcap's `any` shows it; `-Q` selects by direction as on one interface.
#[test]
fn any_shows_loopback_packets_once_and_honours_direction() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, _veth) = setup();
    let lo = fastpath_testutil::ifindex("lo").unwrap();
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
            let cfg = Config::new("any").backend(backend).direction(which);
            let mut rx = Receiver::open(&cfg).unwrap();
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..3u8 {
                sock.send_to(&[i; 3], "127.0.0.1:9999").unwrap();
            }
            let deadline = std::time::Instant::now() + Duration::from_millis(300);
            let mut seen = Vec::new();
            while std::time::Instant::now() < deadline {
                let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
                seen.extend(
                    batch
                        .iter()
                        .filter(to_9999)
                        .map(|p| (p.ifindex(), p.direction())),
                );
            }
            assert_eq!(seen, vec![(lo, want); 3], "{backend} {which:?}");
        }
    }
}

#[test]
fn any_is_refused_where_it_cannot_work() {
    let err = Receiver::open(&Config::new("any").backend(Backend::Xdp)).unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("AF_PACKET"),
        "{err}"
    );
    require!(is_root(), "needs root for AF_PACKET");
    let err = Receiver::open(
        &Config::new("any")
            .backend(Backend::Mmap)
            .timestamps(TimestampType::Adapter),
    )
    .unwrap_err();
    assert!(err.to_string().contains("-j host"), "{err}");
}

/// veth has no hardware clock: `-j adapter` on the AF_PACKET rungs fails naming the interface
/// and the fix (xdp reads the driver's metadata and falls back per packet); the default stamps are the kernel's (AF_PACKET) or fastpath's per batch (xdp), and say so.
#[test]
fn timestamp_types_and_sources() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let (_ns, veth) = setup();
    for backend in [Backend::Recv, Backend::Mmap, Backend::Xdp] {
        let cfg = Config::new(&veth.b)
            .backend(backend)
            .timestamps(TimestampType::Adapter);
        if backend == Backend::Xdp {
            // veth's driver has the receive-timestamp metadata (it reports the skb's hardware
            // stamp): the program reads it; frames without one get the batch time.
            let rx = Receiver::open(&cfg).expect("xdp -j adapter on veth");
            assert!(rx.capabilities().hardware_timestamps);
        } else {
            let err = Receiver::open(&cfg).unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{backend}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("-j host"), "{backend}: {msg}");
            assert!(
                msg.contains("`fpb` has no hardware receive timestamps"),
                "{backend}: {msg}"
            );
        }
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
        assert!(!rx.capabilities().hardware_timestamps);
        let sent = udp_frames(10, veth.a_mac);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let want = if backend == Backend::Xdp {
            TimestampSource::Batch
        } else {
            TimestampSource::Kernel
        };
        let mut seen = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen < sent.len() && std::time::Instant::now() < deadline {
            let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
            for p in &batch {
                if frame_seq(p.data()).is_some() {
                    assert_eq!(p.timestamp_source(), want, "{backend}");
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, sent.len(), "{backend}");
    }
}
