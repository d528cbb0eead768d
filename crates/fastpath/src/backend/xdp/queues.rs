//! The queue checks: how many RX queues an interface has, and whether a queue list fits it.

use crate::sys::xdp as x;
use crate::{Error, Result};

/// RX queues of `ifindex`, if the driver or sysfs says.
pub(crate) fn rx_queue_count(ifindex: u32) -> Option<(String, u32)> {
    let name = x::ifname(ifindex)?;
    let n = x::rx_queue_count_ethtool(&name).or_else(|| x::rx_queue_count_sysfs(&name))?;
    Some((name, n))
}

/// Checks the queue list against the interface: non-empty, no duplicates, each below the
/// interface's RX queue count. Returns that count, if the driver or sysfs says.
pub(super) fn check_queues(ifindex: u32, queues: &[u32]) -> Result<Option<u32>> {
    if queues.is_empty() {
        return Err(Error::InvalidConfig {
            field: "queues",
            why: "no queue given (queue 0 is the usual choice)".into(),
        });
    }
    for (i, q) in queues.iter().enumerate() {
        if queues[..i].contains(q) {
            return Err(Error::InvalidConfig {
                field: "queues",
                why: format!("queue {q} is listed twice"),
            });
        }
    }
    if x::ifname(ifindex).is_none() {
        return Err(Error::NoSuchInterface {
            name: format!("ifindex {ifindex}"),
        });
    }
    let Some((name, n)) = rx_queue_count(ifindex) else {
        return Ok(None);
    };
    if let Some(q) = queues.iter().find(|&&q| q >= n) {
        return Err(Error::InvalidConfig {
            field: "queue",
            why: format!(
                "queue {q} does not exist: `{name}` has {n} RX queue{} (0 to {})",
                if n == 1 { "" } else { "s" },
                n - 1
            ),
        });
    }
    Ok(Some(n))
}
