//! [`AsyncReceiver`]: a [`Receiver`] driven by tokio (cargo feature `tokio`).
//!
//! `recv().await` waits on the receiver's descriptor with [`AsyncFd`] and then lends the very
//! [`Batch`] the blocking [`Receiver::recv`] lends: packets in place in the ring, nothing
//! allocated per packet or per call. Readiness is edge-triggered in tokio; the receiver looks
//! at its ring (or asks `poll(2)`) before sleeping, so packets already queued are never
//! waited for.
//!
//! `dpdk` has no descriptor to wait on (its poll-mode driver is polled): [`AsyncReceiver::new`]
//! refuses it, returning the receiver in [`NoWaitFd`]; drive it from a thread of its own.
//!
//! ```no_run
//! use fastpath::{AsyncReceiver, Config, Receiver};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> fastpath::Result<()> {
//!     let rx = Receiver::open(&Config::new("eth0"))?;
//!     let mut rx = AsyncReceiver::new(rx).map_err(|e| e.error)?;
//!     loop {
//!         let batch = rx.recv().await?;
//!         for pkt in &batch {
//!             println!("{} bytes", pkt.orig_len());
//!         }
//!     }
//! }
//! ```
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;

use crate::{Batch, Error, Receiver, Result, Stats};

/// The receiver's wait descriptor, registered with tokio's reactor. It does not own the
/// descriptor: the [`Receiver`] next to it in [`AsyncReceiver`] does, and outlives it (field
/// order: `fd` is dropped, deregistering, before `rx` closes it).
#[derive(Debug)]
struct WaitFd(RawFd);

impl AsRawFd for WaitFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A [`Receiver`] whose [`recv`](AsyncReceiver::recv) is a future (cargo feature `tokio`).
///
/// Create it inside a tokio runtime with IO enabled.
// Implementation: this file; readiness from `Receiver::is_ready`.
pub struct AsyncReceiver {
    // Drop order matters: deregister before the receiver closes the descriptor.
    fd: AsyncFd<WaitFd>,
    rx: Receiver,
}

impl fmt::Debug for AsyncReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncReceiver")
            .field("rx", &self.rx)
            .finish_non_exhaustive()
    }
}

/// Why [`AsyncReceiver::new`] refused a receiver, with the receiver back.
#[derive(Debug)]
pub struct NoWaitFd {
    /// What is wrong: [`Error::Unsupported`] for a rung without a descriptor to wait on
    /// (`dpdk`), [`Error::Syscall`] if tokio could not register it.
    pub error: Error,
    /// The receiver, unchanged (boxed: it is large, and this is the error path).
    pub receiver: Box<Receiver>,
}

impl AsyncReceiver {
    /// Registers `rx`'s wait descriptor with the current tokio runtime.
    ///
    /// # Errors
    /// [`NoWaitFd`] (with `rx` back) for `dpdk`, or outside a runtime with IO enabled.
    ///
    /// # Panics
    /// Outside a tokio runtime (as [`AsyncFd::new`]).
    pub fn new(rx: Receiver) -> std::result::Result<AsyncReceiver, NoWaitFd> {
        let Some(fd) = rx.wait_fd().map(|fd| fd.as_raw_fd()) else {
            return Err(NoWaitFd {
                error: Error::Unsupported {
                    backend: rx.backend().name(),
                    why: "the poll-mode driver has no descriptor that tells when packets arrive"
                        .into(),
                    fix: "receive with the blocking Receiver::recv on a thread of its own",
                },
                receiver: Box::new(rx),
            });
        };
        // SAFETY: `fd` is the receiver's open descriptor, and it stays open as long as the
        // `AsyncFd` lives: both go into one `AsyncReceiver` whose field order drops (and so
        // deregisters) the `AsyncFd` before the `Receiver` closes the descriptor, and
        // `into_inner` deregisters before handing the receiver out.
        let registered = unsafe { AsyncFd::register_with_interest(WaitFd(fd), Interest::READABLE) };
        match registered.map_err(|e| e.into_parts().1) {
            Ok(fd) => Ok(AsyncReceiver { fd, rx }),
            Err(source) => Err(NoWaitFd {
                error: Error::Syscall {
                    call: "epoll_ctl(EPOLL_CTL_ADD) (tokio AsyncFd)",
                    source,
                },
                receiver: Box::new(rx),
            }),
        }
    }

    /// Waits until packets are there and lends them: the same [`Batch`] as
    /// [`Receiver::recv`], never empty. Drop it (or call [`Batch::release`]) before the next
    /// call. Cancel-safe: dropping the future takes nothing.
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub async fn recv(&mut self) -> Result<Batch<'_>> {
        loop {
            if self.rx.is_ready()? {
                break;
            }
            let mut guard = self.fd.readable().await.map_err(|source| Error::Syscall {
                call: "epoll_wait (tokio AsyncFd)",
                source,
            })?;
            if self.rx.is_ready()? {
                break;
            }
            // Nothing after all: wait for the next edge (tokio keeps a wake-up that came
            // after the guard was taken).
            guard.clear_ready();
        }
        self.rx.recv(Some(Duration::ZERO))
    }

    /// Exact counters since the receiver opened; see [`Receiver::stats`].
    ///
    /// # Errors
    /// As [`Receiver::stats`].
    pub fn stats(&mut self) -> Result<Stats> {
        self.rx.stats()
    }

    /// The receiver.
    pub fn get_ref(&self) -> &Receiver {
        &self.rx
    }

    /// The receiver, mutably (to send, or to receive without waiting).
    pub fn get_mut(&mut self) -> &mut Receiver {
        &mut self.rx
    }

    /// Deregisters from tokio and returns the receiver.
    pub fn into_inner(self) -> Receiver {
        let AsyncReceiver { fd, rx } = self;
        // Deregisters; the descriptor stays open (the receiver owns it).
        let _ = fd.into_inner();
        rx
    }
}
