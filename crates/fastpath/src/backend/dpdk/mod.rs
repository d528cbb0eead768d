//! Rung 3: DPDK. The application drives the device with a poll-mode driver; packets arrive in
//! mbufs from a mempool fastpath owns, and are lent in place (no copy after the driver's).
//!
//! Pieces:
//! - [`eal`]: the EAL, initialised once per process; device names; per-thread lcore ids.
//! - [`ffi`]: the DPDK calls and the C shim (`csrc/dpdk_shim.c`) for its inline fast path.
//! - [`open`] (here): the registry of open ports, and claiming queues on one.
//! - [`Port`] (`port.rs`): one ethdev port, its mempool and queues, shared by the handles on it;
//!   started when its first handle opens, stopped, closed and detached (so it can be probed
//!   again) when its last handle drops.
//! - [`DpdkQueue`] (`queue.rs`): one RX/TX queue pair, driven by one thread at a time: `receive`
//!   lends a burst as a [`DpdkBatch`] whose mbufs are freed in bulk when it drops; `send` copies
//!   frames into mbufs and transmits them.
//!
//! Waiting: DPDK has no descriptor to sleep on. `receive` polls (spins) until a packet arrives or
//! the timeout passes, so a receiving thread uses a whole CPU, as DPDK intends. The descriptor
//! [`Rung::fd`](crate::backend::Rung::fd) returns is always readable.
//!
//! Timestamps: software, `CLOCK_REALTIME` taken once per burst. Counters: `rte_eth_stats_get`.
//! A device that disappears (or, for net_af_packet/net_af_xdp, whose kernel interface disappears
//! or goes down) is reported by `receive` within ~100 ms as [`Error::InterfaceGone`] or
//! [`Error::InterfaceDown`]; the counters read last stay available from `stats`.
mod eal;
mod ffi;
mod port;
mod queue;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;
use crate::{Error, Result};
use eal::Device;
use port::{KernelIface, Port};
use queue::wake_fd;

pub(crate) use queue::{DpdkBatch, DpdkIter, DpdkQueue};

/// The ports open in this process. Every open, queue release and port shutdown happens under
/// this lock, so no port is configured while another thread tears it down.
static PORTS: Mutex<Vec<Arc<Port>>> = Mutex::new(Vec::new());

fn ports() -> MutexGuard<'static, Vec<Arc<Port>>> {
    // A panic while holding the lock leaves the list itself consistent (pushes and removes).
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens one [`DpdkQueue`] per queue in `queues` on the device `cfg.interface()` names.
///
/// The first handle on a device attaches it (EAL arguments or `rte_dev_probe`), creates its
/// mempool and starts it with `max(queues) + 1` queue pairs (RSS spreads flows over them);
/// handles opened later on the same device take queues not yet taken.
pub(crate) fn open(cfg: &Config, queues: &[u32]) -> Result<Vec<DpdkQueue>> {
    cfg.validate()?;
    if cfg.timestamps == crate::config::TimestampType::Adapter {
        return Err(Error::Unsupported {
            backend: "dpdk",
            why: "fastpath does not read the mbuf hardware timestamp field".into(),
            fix: "capture with -j host (a stamp per burst)",
        });
    }
    let d = &cfg.dpdk;
    let mut sorted = queues.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if queues.is_empty() || sorted.len() != queues.len() || sorted.last() >= Some(&1024) {
        return Err(Error::InvalidConfig {
            field: "queue",
            why: format!("{queues:?}: give distinct queue numbers below 1024"),
        });
    }
    let dev = Device::parse(&cfg.interface)?;
    let kernel = match &dev {
        Device::Vdev {
            driver,
            iface: Some(iface),
            ..
        } if driver == "net_af_packet" || driver == "net_af_xdp" => {
            Some(KernelIface::check(iface)?)
        }
        _ => None,
    };
    eal::init(&dev, &d.eal_args)?;
    eal::ensure_lcore();
    // Everything that can fail per queue is made before any queue is claimed, so a failure
    // leaves no queue claimed (and no port started for nobody).
    let wakes = queues
        .iter()
        .map(|_| wake_fd())
        .collect::<Result<Vec<_>>>()?;

    let mut reg = ports();
    let existing = reg
        .iter()
        .find(|p| match &dev {
            Device::Port(id) => p.id == *id,
            _ => Some(p.name.as_str()) == dev.port_name(),
        })
        .cloned();
    let port = match existing {
        Some(p) => p,
        None => {
            let nb_q = sorted.last().map_or(1, |&q| q + 1) as u16;
            let p = Arc::new(Port::open(&dev, cfg, nb_q, kernel)?);
            reg.push(Arc::clone(&p));
            p
        }
    };
    {
        let mut claimed = port.claimed.lock().unwrap_or_else(|e| e.into_inner());
        for &q in queues {
            let why = match claimed.get(q as usize) {
                None => format!(
                    "`{}` was started with {} queue(s) by the handle opened first; open all \
                     queues at once (open_queues, --threads)",
                    cfg.interface, port.nb_q
                ),
                Some(true) => format!("queue {q} of `{}` is already in use", cfg.interface),
                Some(false) => continue,
            };
            drop(claimed);
            // Shuts down a port opened just now for these queues (nothing else claimed).
            port.release(&mut reg, &[]);
            return Err(Error::InvalidConfig {
                field: "queue",
                why,
            });
        }
        for &q in queues {
            claimed[q as usize] = true;
        }
    }
    drop(reg);
    Ok(queues
        .iter()
        .zip(wakes)
        .map(|(&q, wake)| DpdkQueue::new(Arc::clone(&port), q as u16, cfg, wake))
        .collect())
}
