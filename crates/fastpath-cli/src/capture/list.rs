//! `fastpath capture -D`: every interface, and what each backend can do there, from the same
//! [`fastpath::Capabilities`] a receiver opened there reports ([`fastpath::interfaces`]).

use std::io::Write;

use anyhow::Result;
use fastpath::{Backend, InterfaceCaps};

use super::options::Args;

pub(super) fn run(_args: &Args) -> Result<()> {
    let all = fastpath::interfaces()?;
    let mut out = std::io::stdout().lock();
    for (i, ifc) in all.iter().enumerate() {
        write_one(&mut out, i + 1, ifc)?;
    }
    writeln!(
        out,
        "{}.any [every Ethernet-framed interface; recv, recv-batch, mmap; no promiscuous mode]",
        all.len() + 1
    )?;
    out.flush()?;
    Ok(())
}

/// `N.name [Up] ifindex I, Q rx queues, hardware timestamps yes/no` and one line per backend.
fn write_one(out: &mut impl Write, n: usize, ifc: &InterfaceCaps) -> std::io::Result<()> {
    writeln!(
        out,
        "{n}.{} [{}] ifindex {}, {} rx queue{}, hardware timestamps: {}",
        ifc.name,
        if ifc.up { "Up" } else { "Down" },
        ifc.ifindex,
        ifc.rx_queues,
        if ifc.rx_queues == 1 { "" } else { "s" },
        yes(ifc.hw_timestamps),
    )?;
    for (backend, caps) in &ifc.rungs {
        write!(out, "    {:<10} {}", backend.name(), caps.mode)?;
        if *backend == Backend::Xdp {
            let native = match ifc.xdp_native {
                Some(true) => "native and generic",
                Some(false) => "generic only (the driver has no native XDP)",
                None => "generic; native unknown (kernel without the netdev netlink family)",
            };
            write!(
                out,
                ", {native}, zero-copy: {}, VLAN restore: {}, rx timestamp metadata: {}",
                yes(caps.driver_zero_copy),
                yes(caps.restores_vlan),
                yes(ifc.xdp_rx_timestamp),
            )?;
        } else {
            write!(
                out,
                ", VLAN restore: {}, -j adapter: {}",
                yes(caps.restores_vlan),
                yes(ifc.hw_timestamps)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
