//! Rung 3 in a build without the `dpdk` feature: the items of `dpdk/mod.rs` with nothing behind
//! them (mio's `sys/shell` pattern). [`open`] says how to get the real rung; the types are
//! uninhabited, so the receiver's `match` arms for them exist in both builds and cost nothing.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{Rung, RungBatch};
use crate::config::{Backend, Config};
use crate::packet::{Capabilities, Packet, Stats};
use crate::{Error, Result};

/// Fails: this build has no DPDK. Checks `cfg` first, as the real `open` does.
///
/// # Errors
/// [`Error::InvalidConfig`] as [`Config::validate`]; otherwise [`Error::Unsupported`].
pub(crate) fn open(cfg: &Config, queues: &[u32]) -> Result<Vec<DpdkQueue>> {
    let _ = queues;
    cfg.validate()?;
    Err(Error::Unsupported {
        backend: "dpdk",
        why: "fastpath was built without DPDK support".into(),
        fix: "rebuild with --features dpdk",
    })
}

/// A DPDK queue, of which this build has none.
#[derive(Debug)]
pub(crate) enum DpdkQueue {}

impl Rung for DpdkQueue {
    type Batch<'a> = DpdkBatch<'a>;

    const NAMES_LINK_ERRORS: bool = true;

    fn backend(&self) -> Backend {
        match *self {}
    }

    fn ifindex(&self) -> u32 {
        match *self {}
    }

    fn receive(&mut self, _timeout: Option<Duration>) -> Result<DpdkBatch<'_>> {
        match *self {}
    }

    fn stats(&mut self) -> Result<Stats> {
        match *self {}
    }

    fn stop_intake(&mut self) -> Result<Duration> {
        match *self {}
    }

    fn capabilities(&self) -> Capabilities {
        match *self {}
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match *self {}
    }
}

/// A burst of a [`DpdkQueue`]: none.
#[derive(Debug)]
pub(crate) struct DpdkBatch<'a> {
    never: Infallible,
    _queue: PhantomData<&'a mut DpdkQueue>,
}

impl RungBatch for DpdkBatch<'_> {
    type Iter<'b>
        = DpdkIter<'b>
    where
        Self: 'b;

    fn len(&self) -> usize {
        match self.never {}
    }

    fn iter(&self) -> DpdkIter<'_> {
        match self.never {}
    }
}

/// Iterator over a [`DpdkBatch`]: none.
#[derive(Debug)]
pub(crate) struct DpdkIter<'b> {
    never: Infallible,
    _batch: PhantomData<&'b DpdkBatch<'b>>,
}

impl<'b> Iterator for DpdkIter<'b> {
    type Item = Packet<'b>;

    fn next(&mut self) -> Option<Packet<'b>> {
        match self.never {}
    }
}
