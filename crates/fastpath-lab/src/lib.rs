//! # fastpath-lab: the receive ladder, measured here and now
//!
//! The lab answers one question with numbers from the machine it runs on: how many packets
//! per second does each receive path deliver to a user-space program, next to the best
//! existing tools and the in-kernel ceiling?
//!
//! - [`testbed`]: two private network namespaces joined by a veth pair, torn down on drop.
//!   Two core layouts ([`Layout::OneCore`], [`Layout::Split`]).
//! - [`gen`]: the traffic generator (XDP live frames, AF_PACKET fallback), also behind
//!   `fastpath gen`.
//! - [`peers`]: tcpdump, netsniff-ng, dpdk-testpmd and the netring harness run beside fastpath.
//! - [`run()`]: the measurement loop ([`LabConfig`], [`RowSpec`]).
//! - [`report`]: the ratio table, JSON and SVG (sans-IO).
//!
//! What it does not do: tune the machine (no sysctl, IRQ or CPU frequency changes outside its
//! namespaces), nor measure real NICs (use `fastpath gen` and `fastpath capture` for that).
//!
//! Privileges: root (namespaces, XDP programs, AF_PACKET sockets).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod gen;
pub mod peers;
pub mod report;
mod run;
pub mod stages;
pub mod testbed;

pub use report::Report;
pub use run::{run, LabConfig, RowSpec};
pub use testbed::{check_prerequisites, Layout, Testbed};

/// Installs the peer tools with apt (`apt-get install -y tcpdump netsniff-ng dpdk dpdk-dev`;
/// on Debian 12 `dpdk-testpmd` is in `dpdk-dev`). Runs `apt-get update` first.
///
/// # Errors
/// apt-get failed; its exit status is quoted.
pub fn install_peers(progress: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    use std::process::Command;
    let pkgs = ["tcpdump", "netsniff-ng", "dpdk", "dpdk-dev"];
    progress(&format!(
        "installing peers: apt-get install -y {}",
        pkgs.join(" ")
    ));
    let st = Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !st.success() {
        anyhow::bail!("apt-get update failed ({st})");
    }
    let st = Command::new("apt-get")
        .args(["install", "-y"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !st.success() {
        anyhow::bail!("apt-get install failed ({st})");
    }
    Ok(())
}
