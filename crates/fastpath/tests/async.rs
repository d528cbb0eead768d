//! The `tokio` feature: `AsyncReceiver::recv().await` lends the same batches as the blocking
//! receive, byte-exact, wakes when packets arrive later, allocates nothing per packet, and
//! refuses nothing but rungs without a descriptor. Needs root (veth pair in a namespace).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use fastpath::{AsyncReceiver, Backend, Config, Receiver};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, is_root, require, udp_frame, NetNs, RawSender, DST_MAC,
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the only addition is a
// thread-local counter bump, which does not allocate (const-initialised `Cell`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Receives with `recv().await` until `n` test frames came (or 5 s); their bytes in order.
async fn take(rx: &mut AsyncReceiver, n: usize, out: &mut Vec<Vec<u8>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("packets within 5 s")
            .expect("recv");
        assert!(!batch.is_empty(), "recv().await never lends an empty batch");
        for p in &batch {
            if frame_seq(p.data()).is_some() {
                out.push(p.data().to_vec());
            }
        }
    }
}

#[test]
fn async_recv_lends_every_frame_without_allocating() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let ns = NetNs::new("fpas");
    let veth = ns.veth_pair("fpa", "fpb");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    const N: usize = 2000;
    let sent: Vec<_> = (0..N as u32)
        .map(|s| udp_frame(s, 60 + (s as usize % 300), DST_MAC, veth.a_mac))
        .collect();
    let tx = RawSender::new(&veth.a).unwrap();
    for backend in [
        Backend::Recv,
        Backend::RecvBatch,
        Backend::Mmap,
        Backend::Xdp,
    ] {
        rt.block_on(async {
            let rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
            let mut rx = AsyncReceiver::new(rx).map_err(|e| e.error).unwrap();
            // Queued before the first await: found without waiting for an edge.
            tx.send_all(&sent).unwrap();
            let mut got = Vec::with_capacity(N);
            let before = allocs();
            take(&mut rx, N, &mut got).await;
            let after = allocs();
            assert_frames_eq(&got, &sent);
            // The only allocations are the copies this test makes of each frame.
            assert_eq!(
                after - before,
                N as u64,
                "{backend}: allocations besides the copies"
            );
            // Arriving while it waits: the reactor wakes it.
            let later = &sent[..50];
            let mut got = Vec::new();
            tokio::join!(
                async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    tx.send_all(later).unwrap();
                },
                take(&mut rx, later.len(), &mut got)
            );
            assert_frames_eq(&got, later);
            assert!(
                rx.stats().unwrap().delivered >= (N + 50) as u64,
                "{backend}"
            );
            let _plain: Receiver = rx.into_inner();
        });
    }
}

/// `dpdk` has no descriptor that tells when packets arrive: the type says so
/// (`Receiver::wait_fd` is `None`) and `AsyncReceiver::new` hands the receiver back.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_has_no_descriptor_to_wait_on() {
    require!(is_root(), "needs root for network namespaces and DPDK");
    let ns = NetNs::new("fpasd");
    let veth = ns.veth_pair("fpa", "fpb");
    let dev = format!(
        "net_af_packet0,iface={},blocksz=4096,framesz=2048,framecnt=4096",
        veth.b
    );
    let rx = Receiver::open(&Config::new(dev).backend(Backend::Dpdk)).unwrap();
    assert!(rx.wait_fd().is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let refused = AsyncReceiver::new(rx).unwrap_err();
        assert!(
            matches!(refused.error, fastpath::Error::Unsupported { .. }),
            "{}",
            refused.error
        );
        assert_eq!(refused.receiver.backend(), Backend::Dpdk);
    });
}
