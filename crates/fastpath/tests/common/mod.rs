//! Receive loops shared by the tier 1 test binaries (each uses a subset).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use fastpath::{Direction, Error, Receiver};
use fastpath_testutil::frame_seq;

/// One received test frame: bytes, original length, timestamp, ifindex, queue, direction.
pub(crate) struct Got {
    pub(crate) data: Vec<u8>,
    pub(crate) orig_len: u32,
    pub(crate) ts_ns: u64,
    pub(crate) ifindex: u32,
    pub(crate) queue: Option<u32>,
    pub(crate) direction: Direction,
}

/// Receives, in 20 ms polls, until `n` test frames (recognised by [`frame_seq`]) arrived or
/// `limit` passed; other frames are skipped.
pub(crate) fn collect(rx: &mut Receiver, n: usize, limit: Duration) -> Vec<Got> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let batch = rx.recv(Some(Duration::from_millis(20))).expect("recv");
        for p in &batch {
            if frame_seq(p.data()).is_some() {
                got.push(Got {
                    data: p.data().to_vec(),
                    orig_len: p.orig_len(),
                    ts_ns: p.timestamp_ns(),
                    ifindex: p.ifindex(),
                    queue: p.queue(),
                    direction: p.direction(),
                });
            }
        }
    }
    got
}

/// Receives every frame, in 50 ms polls, until `want` arrived and one more quiet round passed
/// (so a stray frame would show up), or 3 s.
pub(crate) fn collect_quiet(rx: &mut Receiver, want: usize) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut full_once = false;
    while Instant::now() < deadline {
        let batch = rx.recv(Some(Duration::from_millis(50))).unwrap();
        let n = batch.len();
        for p in &batch {
            got.push(p.data().to_vec());
        }
        drop(batch);
        if got.len() >= want {
            // One more quiet round, so a stray frame would show up.
            if full_once && n == 0 {
                break;
            }
            full_once = true;
        }
    }
    got
}

/// Receives, in 20 ms polls, until `recv` fails and returns that error; `None` if `limit`
/// passed without one.
pub(crate) fn wait_error(rx: &mut Receiver, limit: Duration) -> Option<Error> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Err(e) = rx.recv(Some(Duration::from_millis(20))) {
            return Some(e);
        }
    }
    None
}
