//! The receive hot path allocates nothing per packet: a counting global allocator watches the
//! receiving thread while it reads thousands of frames through each backend.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use fastpath::{Backend, Config, Receiver};
use fastpath_testutil::{frame_seq, is_root, require, udp_frame, NetNs, RawSender, DST_MAC};

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

#[test]
fn the_receive_loop_allocates_nothing_per_packet() {
    require!(is_root(), "needs root for network namespaces and AF_PACKET");
    let ns = NetNs::new("fpal");
    let veth = ns.veth_pair("fpa", "fpb");
    // Fits every ring: the AF_XDP RX ring holds 4096 descriptors.
    const N: usize = 4000;
    let sent: Vec<_> = (0..N as u32)
        .map(|s| udp_frame(s, 60 + (s as usize % 200), DST_MAC, veth.a_mac))
        .collect();
    let tx = RawSender::new(&veth.a).unwrap();
    // The counter itself works.
    let probe = allocs();
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(allocs(), probe + 1);
    for backend in [
        Backend::Mmap,
        Backend::Xdp,
        Backend::RecvBatch,
        Backend::Recv,
    ] {
        let mut rx = Receiver::open(&Config::new(&veth.b).backend(backend)).unwrap();
        tx.send_all(&sent).unwrap();
        let before = allocs();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut got, mut bytes) = (0usize, 0u64);
        while got < N && Instant::now() < deadline {
            let batch = rx.recv(Some(Duration::from_millis(20))).unwrap();
            for p in &batch {
                if frame_seq(p.data()).is_some() {
                    got += 1;
                    bytes += p.data().iter().map(|&b| u64::from(b)).sum::<u64>();
                }
            }
        }
        let after = allocs();
        assert_eq!(got, N, "{backend}: all frames arrived");
        assert!(bytes > 0);
        assert_eq!(
            after - before,
            0,
            "{backend}: allocations while receiving {N} packets"
        );
    }
}
