//! AF_XDP rings: single-producer single-consumer queues of descriptors shared with the kernel.
//!
//! Each ring is a power-of-two array plus two free-running `u32` indices, `producer` and
//! `consumer`, that wrap at `u32::MAX` (the slot is `index & mask`). User space is the producer of
//! the fill and TX rings ([`RingProd`]) and the consumer of the RX and completion rings
//! ([`RingCons`]). The protocol, from the kernel's `net/xdp/xsk_queue.h`:
//!
//! ```text
//! producer                          consumer
//!
//! if (LOAD ->consumer) {  (A)       LOAD.acq ->producer  (C)
//!    STORE $data                    LOAD $data
//!    STORE.rel ->producer (B)       STORE.rel ->consumer (D)
//! }
//!
//! (A) pairs with (D), and (B) pairs with (C).
//! ```
//!
//! - (B)→(C): everything the producer wrote into a slot (and into the UMEM frame the slot names)
//!   before publishing `producer` is visible to the consumer that Acquire-loads `producer`.
//! - (D)→(A): the consumer's reads of a slot (and of its frame) happen before the producer, having
//!   seen the new `consumer`, overwrites the slot. The kernel relies on a control dependency at
//!   (A); Rust's memory model has none, so we load with Acquire there (as xdpilone's `count_free`
//!   does).
//!
//! Kernel counterparts: for the rings we produce (fill, TX) the kernel consumes with
//! `__xskq_cons_peek` (C) and `__xskq_cons_release` (D); for the rings we consume (RX, completion)
//! it produces with `xskq_prod_nb_free`/`xskq_prod_is_full` (A) and `__xskq_prod_submit` (B).
//!
//! The views are generic over `M`, the owner of the memory, so the same code runs over a kernel
//! mapping ([`crate::sys::Mmap`]) and, in tests, over heap memory driven by a "fake kernel"
//! thread (which Miri checks for data races).
//!
//! Guarantees: no Rust reference is ever created over a descriptor slot (slots are read and
//! written by value through raw pointers, and only while user space owns them); the index words
//! are only accessed as atomics; every offset the kernel reported is checked once in `new`, so the
//! hot path only masks.
#![allow(unsafe_code)]

use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::sys::xdp::{xdp_ring_offset, XDP_RING_NEED_WAKEUP};

/// A free-running ring index (wraps at `u32::MAX`; the slot is `index & mask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingIdx(pub(crate) u32);

impl RingIdx {
    /// The index `n` entries after this one.
    #[inline]
    pub(crate) fn add(self, n: u32) -> RingIdx {
        RingIdx(self.0.wrapping_add(n))
    }
}

/// A contiguous run of entries, `start..start + len` (free-running indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "reserved or peeked entries must be submitted or released"]
pub(crate) struct Span {
    pub(crate) start: RingIdx,
    pub(crate) len: u32,
}

impl Span {
    /// The indices of the span, in ring order.
    #[inline]
    pub(crate) fn iter(self) -> impl Iterator<Item = RingIdx> {
        (0..self.len).map(move |i| self.start.add(i))
    }
}

/// An index the other side published that the protocol makes impossible: more entries
/// published than the ring holds, or an index that moved backwards. The ring is not read past
/// it (doing so could read slots the other side is writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingFault {
    /// What is wrong.
    pub(crate) why: &'static str,
    /// The index read.
    pub(crate) value: u64,
}

/// Why a ring layout reported by the kernel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayoutError(pub(crate) &'static str);

/// Byte offsets of one ring's fields inside its memory (`struct xdp_ring_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingLayout {
    pub(crate) producer: usize,
    pub(crate) consumer: usize,
    pub(crate) desc: usize,
    pub(crate) flags: usize,
}

impl RingLayout {
    /// Converts the kernel's offsets; `None` if one does not fit in `usize`.
    pub(crate) fn from_offsets(off: &xdp_ring_offset) -> Option<RingLayout> {
        Some(RingLayout {
            producer: usize::try_from(off.producer).ok()?,
            consumer: usize::try_from(off.consumer).ok()?,
            desc: usize::try_from(off.desc).ok()?,
            flags: usize::try_from(off.flags).ok()?,
        })
    }

    /// Bytes a ring of `size` entries of `T` needs with this layout (what to mmap).
    pub(crate) fn map_len<T>(&self, size: u32) -> Option<usize> {
        (size as usize)
            .checked_mul(size_of::<T>())?
            .checked_add(self.desc)
    }
}

/// Pointers into one ring, checked against its memory once.
#[derive(Debug)]
struct RawRing<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<T>,
    mask: u32,
}

impl<T: Copy> RawRing<T> {
    /// # Safety
    /// `base..base + len` must be valid for reads and writes for as long as the returned value
    /// is used (the caller keeps the owner of that memory next to it).
    unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        layout: RingLayout,
        size: u32,
    ) -> Result<Self, LayoutError> {
        if size == 0 || !size.is_power_of_two() {
            return Err(LayoutError("ring size is not a power of two"));
        }
        let word = |off: usize, what: &'static str| -> Result<NonNull<AtomicU32>, LayoutError> {
            if off & (align_of::<AtomicU32>() - 1) != 0
                || off
                    .checked_add(size_of::<AtomicU32>())
                    .is_none_or(|e| e > len)
            {
                return Err(LayoutError(what));
            }
            // In bounds: off + 4 <= len (checked above), so the pointer stays inside the memory.
            let p = base.as_ptr().wrapping_add(off).cast::<AtomicU32>();
            Ok(NonNull::new(p).expect("an in-bounds offset from a non-null base is non-null"))
        };
        let producer = word(layout.producer, "producer offset outside the ring mapping")?;
        let consumer = word(layout.consumer, "consumer offset outside the ring mapping")?;
        let flags = word(layout.flags, "flags offset outside the ring mapping")?;
        if layout.desc & (align_of::<T>() - 1) != 0
            || layout.map_len::<T>(size).is_none_or(|e| e > len)
            || (base.as_ptr() as usize) & (align_of::<T>() - 1) != 0
        {
            return Err(LayoutError(
                "descriptor array outside the ring mapping or misaligned",
            ));
        }
        let desc = NonNull::new(base.as_ptr().wrapping_add(layout.desc).cast::<T>())
            .expect("an in-bounds offset from a non-null base is non-null");
        Ok(RawRing {
            producer,
            consumer,
            flags,
            desc,
            mask: size - 1,
        })
    }

    /// Number of entries.
    #[inline]
    fn size(&self) -> u32 {
        self.mask + 1
    }

    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: in bounds and 4-byte aligned (checked in `new`); the memory outlives `self`
        // (contract of `new`). The other side only touches this word atomically, and so do we:
        // a shared reference to an atomic is the right type for concurrently mutated memory.
        unsafe { self.producer.as_ref() }
    }

    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    #[inline]
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    #[inline]
    fn slot(&self, idx: RingIdx) -> *mut T {
        // In bounds: `idx & mask < size` and the array of `size` entries lies inside the
        // memory (checked in `new`).
        self.desc
            .as_ptr()
            .wrapping_add((idx.0 & self.mask) as usize)
    }
}

/// The user-space producer end of a ring (fill, TX).
///
/// Invariant: `published ≤ cached_prod ≤ cached_cons` in ring arithmetic (differences taken
/// with `wrapping_sub`); slots `published..cached_prod` are reserved and not yet visible to the
/// kernel, so only we may write them.
#[derive(Debug)]
pub(crate) struct RingProd<T, M> {
    raw: RawRing<T>,
    /// Next index to reserve.
    cached_prod: u32,
    /// The consumer index last seen plus the ring size: the first index we may not write.
    cached_cons: u32,
    /// The producer index last stored (we are its only writer).
    published: u32,
    _mem: M,
}

// SAFETY: the view holds raw pointers into memory owned by `M`, which moves with it; the ring
// protocol, not thread affinity, governs access, and there is exactly one producer view per ring.
unsafe impl<T: Send, M: Send> Send for RingProd<T, M> {}

impl<T: Copy, M> RingProd<T, M> {
    /// The producer view of the ring laid out as `layout` in `len` bytes at `base`, owned by
    /// `mem`, with `size` entries.
    ///
    /// # Safety
    /// - `base..base + len` is valid for reads and writes while `mem` lives (`mem` owns it: the
    ///   mapping outlives the ring because the ring owns the mapping).
    /// - The memory is never mutably aliased by Rust: the kernel (or the test's fake kernel)
    ///   writes it concurrently, following the protocol in the module docs as the only consumer.
    /// - No other producer view of this ring exists.
    pub(crate) unsafe fn new(
        mem: M,
        base: NonNull<u8>,
        len: usize,
        layout: RingLayout,
        size: u32,
    ) -> Result<Self, LayoutError> {
        // SAFETY: forwarded from our own contract.
        let raw = unsafe { RawRing::new(base, len, layout, size)? };
        // We are the only writer of `producer`: no synchronisation needed to read our own value.
        let published = raw.producer().load(Ordering::Relaxed);
        // (A) pairs with the consumer's release of `consumer` (D).
        let cached_cons = raw.consumer().load(Ordering::Acquire).wrapping_add(size);
        Ok(RingProd {
            raw,
            cached_prod: published,
            cached_cons,
            published,
            _mem: mem,
        })
    }

    /// Free slots, re-reading the consumer index only when the cached count is below `want`.
    ///
    /// # Errors
    /// [`RingFault`] if the consumer index the other side published is impossible: ahead of
    /// what we published, or more than a ring behind what we reserved (then more than `size`
    /// slots would look free). The cached index is left as it was.
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> Result<u32, RingFault> {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return Ok(free);
        }
        // (A): Acquire pairs with the kernel's `smp_store_release(&ring->consumer)` in
        // `__xskq_cons_release` (D): its reads of the slots it consumed happen before we
        // overwrite them. (The kernel gets by with a control dependency; Rust has none.)
        let consumer = self.raw.consumer().load(Ordering::Acquire);
        // The consumer can only have taken what we published: published - consumer is in
        // 0..=size (as ring arithmetic), so at most `size` slots are free.
        if self.published.wrapping_sub(consumer) > self.raw.size() {
            return Err(RingFault {
                why: "consumer index outside what was published",
                value: u64::from(consumer),
            });
        }
        self.cached_cons = consumer.wrapping_add(self.raw.size());
        Ok(self.cached_cons.wrapping_sub(self.cached_prod))
    }

    /// Reserves up to `n` slots (fewer when the ring has less room; 0 when full).
    ///
    /// # Errors
    /// As [`free`](Self::free); nothing is reserved then.
    #[inline]
    pub(crate) fn reserve(&mut self, n: u32) -> Result<Span, RingFault> {
        let len = self.free(n)?.min(n);
        let start = RingIdx(self.cached_prod);
        self.cached_prod = self.cached_prod.wrapping_add(len);
        Ok(Span { start, len })
    }

    /// Writes `v` into reserved slot `idx`.
    ///
    /// # Panics
    /// If `idx` is not reserved and unsubmitted: writing any other slot would race the kernel.
    #[inline]
    pub(crate) fn write(&mut self, idx: RingIdx, v: T) {
        assert!(
            idx.0.wrapping_sub(self.published) < self.cached_prod.wrapping_sub(self.published),
            "write to a slot that is not reserved"
        );
        // SAFETY: the slot is in bounds (see `slot`) and reserved (asserted): the consumer has
        // released it, (A) made its reads happen before this write, and it will not read it
        // until we publish it with (B). We write by value; no reference is created.
        unsafe { self.raw.slot(idx).write(v) };
    }

    /// Publishes the first `n` reserved slots to the consumer.
    ///
    /// # Panics
    /// If fewer than `n` slots are reserved.
    #[inline]
    pub(crate) fn submit(&mut self, n: u32) {
        assert!(
            n <= self.cached_prod.wrapping_sub(self.published),
            "submit more than reserved"
        );
        if n == 0 {
            return;
        }
        self.published = self.published.wrapping_add(n);
        // (B): Release pairs with the kernel's `smp_load_acquire(&ring->producer)` in
        // `__xskq_cons_peek` (C): all writes to the slots, and to the UMEM frames they name, are
        // ordered before this write to the producer index; this is the memory synchronisation
        // edge.
        self.raw.producer().store(self.published, Ordering::Release);
    }

    /// Gives back the last `n` reserved, unsubmitted slots.
    ///
    /// # Panics
    /// If fewer than `n` slots are reserved.
    #[inline]
    pub(crate) fn cancel(&mut self, n: u32) {
        assert!(
            n <= self.cached_prod.wrapping_sub(self.published),
            "cancel more than reserved"
        );
        self.cached_prod = self.cached_prod.wrapping_sub(n);
    }

    /// Whether the kernel asks for a syscall (`XDP_RING_NEED_WAKEUP`) to consume this ring.
    ///
    /// Call it after [`submit`](Self::submit). The question is a store→load one: our store to
    /// `producer` must be ordered before our load of `flags`, or we can read a stale "no wakeup
    /// needed" while the kernel, which sets the flag and then looks at `producer` once more, still
    /// sees the old producer. Both sides then sleep with entries queued (a lost wakeup).
    /// Release/Acquire never orders a store before a later load; only a SeqCst fence does (a
    /// full barrier, `mfence` or a locked op on x86-64, paid once per batch, not per packet).
    /// io-uring's `SubmissionQueue::need_wakeup` makes the same argument for
    /// `IORING_SQ_NEED_WAKEUP`: <https://github.com/tokio-rs/io-uring/issues/197>. libxdp's
    /// `xsk_ring_prod__needs_wakeup` omits the barrier and relies on the next `poll`; a spurious
    /// "needs wakeup" only costs one syscall, a missed one costs latency, so we pay the fence.
    ///
    /// The flag itself is advisory (it can change right after we read it), so the load is Relaxed.
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        fence(Ordering::SeqCst);
        self.raw.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Slots reserved but not yet submitted.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.published)
    }
}

/// The user-space consumer end of a ring (RX, completion).
///
/// Invariant: `released ≤ cached_cons ≤ cached_prod` in ring arithmetic; slots
/// `released..cached_cons` are peeked: the kernel published them and will not touch them until
/// we release them.
#[derive(Debug)]
pub(crate) struct RingCons<T, M> {
    raw: RawRing<T>,
    /// The producer index last seen.
    cached_prod: u32,
    /// Next index to peek.
    cached_cons: u32,
    /// The consumer index last stored (we are its only writer).
    released: u32,
    _mem: M,
}

// SAFETY: as for `RingProd`: the memory owner moves with the view and there is one consumer view.
unsafe impl<T: Send, M: Send> Send for RingCons<T, M> {}

impl<T: Copy, M> RingCons<T, M> {
    /// The consumer view of the ring laid out as `layout` in `len` bytes at `base`, owned by
    /// `mem`, with `size` entries.
    ///
    /// # Safety
    /// - `base..base + len` is valid for reads and writes while `mem` lives (`mem` owns it).
    /// - The memory is never mutably aliased by Rust: the kernel (or a fake kernel) writes it
    ///   concurrently, following the protocol in the module docs as the only producer.
    /// - No other consumer view of this ring exists.
    pub(crate) unsafe fn new(
        mem: M,
        base: NonNull<u8>,
        len: usize,
        layout: RingLayout,
        size: u32,
    ) -> Result<Self, LayoutError> {
        // SAFETY: forwarded from our own contract.
        let raw = unsafe { RawRing::new(base, len, layout, size)? };
        // We are the only writer of `consumer`: reading our own value needs no synchronisation.
        let released = raw.consumer().load(Ordering::Relaxed);
        // (C) pairs with the producer's (B).
        let cached_prod = raw.producer().load(Ordering::Acquire);
        Ok(RingCons {
            raw,
            cached_prod,
            cached_cons: released,
            released,
            _mem: mem,
        })
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn size(&self) -> u32 {
        self.raw.size()
    }

    /// Entries published and not yet peeked, re-reading the producer index only when the cached
    /// count is below `want`.
    ///
    /// # Errors
    /// [`RingFault`] if the producer index the other side published is impossible: more than
    /// `size` entries ahead of what we released, or behind what we peeked. The cached index is
    /// left as it was.
    #[inline]
    pub(crate) fn available(&mut self, want: u32) -> Result<u32, RingFault> {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= want {
            return Ok(avail);
        }
        // (C): Acquire pairs with the kernel's `smp_store_release(&ring->producer)` in
        // `__xskq_prod_submit` (B): the slots, and the frame bytes they describe, written before
        // that store are visible to us after this load.
        let producer = self.raw.producer().load(Ordering::Acquire);
        self.check_producer(producer)?;
        self.cached_prod = producer;
        Ok(self.cached_prod.wrapping_sub(self.cached_cons))
    }

    /// Whether `producer` is possible: at most `size` entries past what we released (the ring
    /// holds no more) and not behind what we peeked (producers only move forward).
    #[inline]
    fn check_producer(&self, producer: u32) -> Result<(), RingFault> {
        let held = producer.wrapping_sub(self.released);
        if held > self.raw.size() || held < self.cached_cons.wrapping_sub(self.released) {
            return Err(RingFault {
                why: "producer index more than a ring ahead, or moved back",
                value: u64::from(producer),
            });
        }
        Ok(())
    }

    /// Entries published and not yet peeked, read now (for counters; no entry is taken).
    ///
    /// # Errors
    /// As [`available`](Self::available).
    pub(crate) fn pending(&self) -> Result<u32, RingFault> {
        // (C), as in `available`; here only the count matters.
        let producer = self.raw.producer().load(Ordering::Acquire);
        self.check_producer(producer)?;
        Ok(producer.wrapping_sub(self.cached_cons))
    }

    /// Takes up to `max` published entries (0 when the ring is empty).
    ///
    /// # Errors
    /// As [`available`](Self::available); nothing is taken then.
    #[inline]
    pub(crate) fn peek(&mut self, max: u32) -> Result<Span, RingFault> {
        let len = self.available(max)?.min(max);
        let start = RingIdx(self.cached_cons);
        self.cached_cons = self.cached_cons.wrapping_add(len);
        Ok(Span { start, len })
    }

    /// Reads peeked slot `idx` by value.
    ///
    /// # Panics
    /// If `idx` is not peeked and unreleased: reading any other slot would race the kernel.
    #[inline]
    pub(crate) fn read(&self, idx: RingIdx) -> T {
        assert!(
            idx.0.wrapping_sub(self.released) < self.cached_cons.wrapping_sub(self.released),
            "read of a slot that is not peeked"
        );
        // SAFETY: the slot is in bounds (see `slot`) and peeked (asserted): (C) made the
        // producer's write of it visible, and the producer will not overwrite it before our (D)
        // release. Read by value; no reference is created.
        unsafe { self.raw.slot(idx).read() }
    }

    /// Hands the oldest `n` peeked slots back to the producer.
    ///
    /// # Panics
    /// If fewer than `n` slots are peeked.
    #[inline]
    pub(crate) fn release(&mut self, n: u32) {
        assert!(
            n <= self.cached_cons.wrapping_sub(self.released),
            "release more than peeked"
        );
        if n == 0 {
            return;
        }
        self.released = self.released.wrapping_add(n);
        // (D): Release pairs with the kernel's load of `ring->consumer` in `xskq_prod_nb_free`
        // / `xskq_prod_is_full` (A): our reads of these slots (and of their frames) happen
        // before the kernel reuses them.
        self.raw.consumer().store(self.released, Ordering::Release);
    }

    /// Entries peeked and not yet released.
    #[cfg(test)]
    pub(crate) fn peeked(&self) -> u32 {
        self.cached_cons.wrapping_sub(self.released)
    }

    /// Plays the producer for a test: writes `v` into the next slot and publishes it.
    ///
    /// # Safety
    /// The real producer (the kernel) must be idle on this ring for as long as the test uses
    /// it (no traffic on an RX ring, nothing in flight for a completion ring), so the slot is
    /// not written by two parties.
    #[cfg(test)]
    pub(crate) unsafe fn forge(&mut self, v: T) {
        let p = self.raw.producer().load(Ordering::Acquire);
        // SAFETY: in bounds (see `slot`); the caller guarantees the producer is idle, and the
        // slot at the producer index is not peeked, so nobody reads or writes it meanwhile.
        unsafe { self.raw.slot(RingIdx(p)).write(v) };
        // (B), as the kernel's producer would.
        self.raw
            .producer()
            .store(p.wrapping_add(1), Ordering::Release);
    }

    /// Plays a broken producer for a test: publishes `p` as the producer index.
    #[cfg(test)]
    pub(crate) fn forge_producer(&self, p: u32) {
        self.raw.producer().store(p, Ordering::Release);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sys::xdp::xdp_desc;
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::sync::Arc;

    /// Heap memory standing in for a kernel mapping.
    #[derive(Debug)]
    struct Heap {
        ptr: NonNull<u8>,
        layout: Layout,
    }

    // SAFETY: plain heap memory; all concurrent access goes through the ring protocol under test
    // (atomics for the index words, Release/Acquire-ordered plain accesses for slots and frames).
    unsafe impl Send for Heap {}
    // SAFETY: as above.
    unsafe impl Sync for Heap {}

    impl Heap {
        fn new(len: usize) -> Arc<Heap> {
            let layout = Layout::from_size_align(len, 64).unwrap();
            // SAFETY: `layout` has non-zero size.
            let p = unsafe { alloc_zeroed(layout) };
            Arc::new(Heap {
                ptr: NonNull::new(p).expect("allocation succeeded"),
                layout,
            })
        }
    }

    impl Drop for Heap {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout; every view holding an `Arc` is gone.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }

    /// The layout the kernel uses: indices on separate cache lines, then flags, then slots.
    const LAYOUT: RingLayout = RingLayout {
        producer: 0,
        consumer: 64,
        flags: 128,
        desc: 192,
    };

    /// A ring of `size` entries of `T` in heap memory, with both indices starting at `start`;
    /// returns (producer view, consumer view).
    #[allow(clippy::type_complexity)]
    fn pair<T: Copy>(size: u32, start: u32) -> (RingProd<T, Arc<Heap>>, RingCons<T, Arc<Heap>>) {
        let len = LAYOUT.map_len::<T>(size).unwrap();
        let heap = Heap::new(len);
        let base = heap.ptr;
        // SAFETY: in bounds (offset 0 and 64 of a `len`-byte block, len > 192), 4-byte aligned,
        // and no view exists yet.
        unsafe {
            base.cast::<u32>().write(start);
        }
        // SAFETY: as above.
        unsafe {
            base.as_ptr().wrapping_add(64).cast::<u32>().write(start);
        }
        // SAFETY: `heap` owns `len` bytes at `base` and moves into the view; the only other view
        // is the consumer below, and nothing else aliases the memory.
        let p = unsafe { RingProd::new(heap.clone(), base, len, LAYOUT, size) }.unwrap();
        // SAFETY: as above, for the single consumer view.
        let c = unsafe { RingCons::new(heap, base, len, LAYOUT, size) }.unwrap();
        (p, c)
    }

    #[test]
    fn layout_is_checked() {
        let heap = Heap::new(256);
        let bad = [
            (
                RingLayout {
                    producer: 254,
                    ..LAYOUT
                },
                8,
            ),
            (
                RingLayout {
                    consumer: 3,
                    ..LAYOUT
                },
                8,
            ),
            (
                RingLayout {
                    desc: 196,
                    ..LAYOUT
                },
                1,
            ),
            (
                RingLayout {
                    desc: 200,
                    ..LAYOUT
                },
                8,
            ),
            (LAYOUT, 3),
            (LAYOUT, 0),
        ];
        for (layout, size) in bad {
            // SAFETY: `heap` owns 256 bytes at `ptr`; a refused layout creates no view.
            let r = unsafe { RingCons::<u64, _>::new(heap.clone(), heap.ptr, 256, layout, size) };
            assert!(r.is_err(), "{layout:?} x {size} accepted");
        }
        // 192 + 8 * 8 = 256: exactly fits.
        // SAFETY: as above.
        let ok = unsafe { RingCons::<u64, _>::new(heap.clone(), heap.ptr, 256, LAYOUT, 8) };
        assert!(ok.is_ok());
    }

    #[test]
    fn full_and_empty() {
        let (mut p, mut c) = pair::<u64>(8, 0);
        assert_eq!(c.peek(4).unwrap().len, 0, "empty ring peeks nothing");
        let s = p.reserve(8).unwrap();
        assert_eq!(s.len, 8);
        for (i, idx) in s.iter().enumerate() {
            p.write(idx, i as u64);
        }
        assert_eq!(p.reserve(1).unwrap().len, 0, "full ring reserves nothing");
        p.submit(8);
        assert_eq!(
            p.reserve(1).unwrap().len,
            0,
            "still full until the consumer releases"
        );
        let r = c.peek(100).unwrap();
        assert_eq!(r.len, 8);
        let got: Vec<u64> = r.iter().map(|i| c.read(i)).collect();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        assert_eq!(
            p.reserve(1).unwrap().len,
            0,
            "peeked but not released: no room yet"
        );
        c.release(3);
        assert_eq!(p.reserve(5).unwrap().len, 3, "exactly the released slots");
        p.cancel(3);
        c.release(5);
        assert_eq!(c.peek(1).unwrap().len, 0);
        assert_eq!(p.free(8).unwrap(), 8);
    }

    #[test]
    fn batch_boundaries() {
        let (mut p, mut c) = pair::<u64>(16, 0);
        // Reserve more than free: partial.
        let a = p.reserve(10).unwrap();
        assert_eq!(a.len, 10);
        let b = p.reserve(10).unwrap();
        assert_eq!((b.start, b.len), (RingIdx(10), 6));
        for idx in a.iter().chain(b.iter()) {
            p.write(idx, u64::from(idx.0) * 3);
        }
        // Submit in two steps; the consumer sees only what is published.
        p.submit(5);
        assert_eq!(
            c.peek(16).unwrap().len,
            5,
            "peek more than available: what is there"
        );
        p.submit(11);
        assert_eq!(p.reserved(), 0);
        let r = c.peek(4).unwrap();
        assert_eq!((r.start, r.len), (RingIdx(5), 4));
        assert_eq!(c.read(RingIdx(7)), 21);
        assert_eq!(c.peeked(), 9);
        c.release(9);
        let r = c.peek(u32::MAX).unwrap();
        assert_eq!((r.start, r.len), (RingIdx(9), 7));
        c.release(7);
    }

    #[test]
    #[should_panic(expected = "not reserved")]
    fn write_outside_reservation_panics() {
        let (mut p, _c) = pair::<u64>(8, 0);
        let s = p.reserve(2).unwrap();
        p.write(s.start.add(2), 0);
    }

    #[test]
    #[should_panic(expected = "not peeked")]
    fn read_outside_peek_panics() {
        let (mut p, c) = pair::<u64>(8, 0);
        let s = p.reserve(2).unwrap();
        p.write(s.start, 1);
        p.write(s.start.add(1), 2);
        p.submit(2);
        let _ = c.read(RingIdx(0));
    }

    #[test]
    fn wraps_at_u32_max() {
        let start = u32::MAX - 5;
        let (mut p, mut c) = pair::<xdp_desc>(8, start);
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..6 {
            let s = p.reserve(7).unwrap();
            assert_eq!(s.len, 7, "round {round}");
            for idx in s.iter() {
                p.write(
                    idx,
                    xdp_desc {
                        addr: next,
                        len: idx.0,
                        options: 0,
                    },
                );
                next += 1;
            }
            p.submit(s.len);
            let r = c.peek(8).unwrap();
            assert_eq!(r.len, 7);
            for idx in r.iter() {
                let d = c.read(idx);
                assert_eq!((d.addr, d.len), (expect, idx.0));
                expect += 1;
            }
            c.release(r.len);
        }
        // 42 entries went through an index that started 6 below u32::MAX.
        assert_eq!(c.released, start.wrapping_add(42));
        assert!(c.released < start, "index wrapped");
        assert_eq!(p.free(8).unwrap(), 8);
    }

    #[test]
    fn need_wakeup_reads_the_flag() {
        let (p, _c) = pair::<u64>(8, 0);
        assert!(!p.needs_wakeup());
        p.raw.flags().store(XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(p.needs_wakeup());
    }

    /// An index the other side could never publish ends the read with a fault instead of
    /// lending slots it may be writing.
    #[test]
    fn impossible_indices_are_faults() {
        let (mut p, mut c) = pair::<u64>(8, u32::MAX - 2);
        let s = p.reserve(3).unwrap();
        for idx in s.iter() {
            p.write(idx, 7);
        }
        p.submit(3);
        assert_eq!(c.peek(1).unwrap().len, 1);
        // A producer 9 entries past what the consumer released: more than the ring holds.
        p.raw
            .producer()
            .store(c.released.wrapping_add(9), Ordering::Release);
        let f = c.peek(8).unwrap_err();
        assert!(f.why.contains("producer"), "{f:?}");
        assert_eq!(c.peeked(), 1, "nothing more was taken");
        assert!(c.pending().is_err());
        // Moved back behind what was peeked.
        p.raw.producer().store(c.released, Ordering::Release);
        assert!(c.peek(8).is_err());
        // Put back, all is well again.
        p.raw
            .producer()
            .store(c.released.wrapping_add(3), Ordering::Release);
        assert_eq!(c.pending().unwrap(), 2);
        assert_eq!(c.peek(8).unwrap().len, 2);

        // The consumer index of a producer ring: ahead of what was published.
        let (mut p, c) = pair::<u64>(8, 100);
        let _ = p.reserve(8).unwrap();
        p.submit(8);
        c.raw.consumer().store(109, Ordering::Release);
        let f = p.reserve(1).unwrap_err();
        assert!(f.why.contains("consumer"), "{f:?}");
        // More than a ring behind.
        c.raw.consumer().store(50, Ordering::Release);
        assert!(p.free(1).is_err());
        c.raw.consumer().store(104, Ordering::Release);
        assert_eq!(p.free(1).unwrap(), 4);
    }

    /// A "fake kernel" thread consumes the fill ring, writes a packet into each frame it got and
    /// produces RX descriptors; the user thread reads the frames and recycles them into the fill
    /// ring. Under Miri this checks that the orderings make every frame access race-free.
    #[test]
    fn fake_kernel_two_threads() {
        const FRAMES: u32 = 8;
        const FRAME: usize = 64;
        let packets: u32 = if cfg!(miri) { 200 } else { 100_000 };
        let start = u32::MAX - 20;
        let (mut fill, mut k_fill) = pair::<u64>(8, start);
        let (mut k_rx, mut rx) = pair::<xdp_desc>(4, start);
        let umem = Heap::new(FRAMES as usize * FRAME);
        let umem_k = umem.clone();

        let s = fill.reserve(FRAMES).unwrap();
        assert_eq!(s.len, FRAMES);
        for (i, idx) in s.iter().enumerate() {
            fill.write(idx, (i * FRAME) as u64);
        }
        fill.submit(FRAMES);

        let kernel = std::thread::spawn(move || {
            let mut seq = 0u32;
            while seq < packets {
                let f = k_fill.peek(1).unwrap();
                if f.len == 0 {
                    std::thread::yield_now();
                    continue;
                }
                let addr = k_fill.read(f.start);
                let out = loop {
                    let o = k_rx.reserve(1).unwrap();
                    if o.len == 1 {
                        break o;
                    }
                    std::thread::yield_now();
                };
                let len = 4 + (seq % 60) as usize;
                let frame = umem_k.ptr.as_ptr().wrapping_add(addr as usize);
                for b in 0..len {
                    // SAFETY: `addr` came from the fill ring, so the user thread gave this frame
                    // up (its reads happen before its fill submit (B), which our peek (C)
                    // acquired); [addr, addr + len) lies in the UMEM (len ≤ 63 < FRAME).
                    unsafe {
                        frame
                            .wrapping_add(b)
                            .write((seq as u8).wrapping_add(b as u8))
                    };
                }
                k_fill.release(1);
                k_rx.write(
                    out.start,
                    xdp_desc {
                        addr,
                        len: len as u32,
                        options: seq,
                    },
                );
                k_rx.submit(1);
                seq += 1;
            }
        });

        let mut seen = 0u32;
        while seen < packets {
            let r = rx.peek(4).unwrap();
            if r.len == 0 {
                std::thread::yield_now();
                continue;
            }
            let back = fill.reserve(r.len).unwrap();
            assert_eq!(
                back.len, r.len,
                "frames are conserved: the fill ring has room"
            );
            for (i, idx) in r.iter().enumerate() {
                let d = rx.read(idx);
                assert_eq!(d.options, seen, "in order");
                let frame = umem.ptr.as_ptr().wrapping_add(d.addr as usize);
                for b in 0..d.len as usize {
                    // SAFETY: the descriptor was acquired by peek (C), which made the fake
                    // kernel's frame writes (before its rx submit (B)) visible; the frame is ours
                    // until we put its address back on the fill ring below.
                    let v = unsafe { frame.wrapping_add(b).read() };
                    assert_eq!(v, (seen as u8).wrapping_add(b as u8));
                }
                fill.write(back.start.add(i as u32), d.addr);
                seen += 1;
            }
            rx.release(r.len);
            fill.submit(back.len);
        }
        kernel.join().unwrap();
    }
}
