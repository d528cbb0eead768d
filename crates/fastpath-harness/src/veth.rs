//! veth pairs: two virtual Ethernet devices joined back to back, frames sent on one arrive on
//! the other.

use std::io;

use crate::ip;

/// Options for a veth pair; `None` keeps the kernel default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethOptions {
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// `numrxqueues`/`numtxqueues` of both ends (kernel default: 1).
    pub queues: Option<u32>,
}

/// A veth pair created by [`Namespace::veth_pair`](crate::netns::Namespace::veth_pair); frames
/// sent on `a` arrive on `b` and vice versa.
///
/// Plain data: the interfaces go away with their namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// Name of the first end.
    pub a: String,
    /// Name of the second end.
    pub b: String,
    /// Ifindex of `a` (in the namespace).
    pub a_index: u32,
    /// Ifindex of `b` (in the namespace).
    pub b_index: u32,
    /// MAC address of `a`.
    pub a_mac: [u8; 6],
    /// MAC address of `b`.
    pub b_mac: [u8; 6],
}

/// One end of a veth pair to create: its name and the namespace it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VethEnd<'a> {
    /// Interface name (1..=15 bytes).
    pub name: &'a str,
    /// `netns NAME`: the namespace the end is moved to; `None`: where it is created.
    pub netns: Option<&'a str>,
}

impl<'a> VethEnd<'a> {
    /// An end named `name` that stays in the namespace the pair is created in.
    pub fn here(name: &'a str) -> VethEnd<'a> {
        VethEnd { name, netns: None }
    }

    /// An end named `name` moved into namespace `netns`.
    pub fn in_netns(name: &'a str, netns: &'a str) -> VethEnd<'a> {
        VethEnd {
            name,
            netns: Some(netns),
        }
    }
}

/// Creates the veth pair `a`/`b`: `ip [-n IN] link add name A ... type veth peer name B ...`,
/// each end with `opts` and its `netns`. `in_netns`: the namespace the command runs in (`-n`;
/// `None`: the calling thread's). Both ends are left down.
///
/// # Errors
/// A name is invalid, or `ip` failed (names taken, no CONFIG_VETH, not root).
pub fn add(
    in_netns: Option<&str>,
    a: &VethEnd<'_>,
    b: &VethEnd<'_>,
    opts: &VethOptions,
) -> io::Result<()> {
    ip::check_ifname(a.name)?;
    ip::check_ifname(b.name)?;
    let args = link_add_args(in_netns, a, b, opts);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ip::ip(&args)
}

/// The arguments of `ip` for [`add`] (sans-IO).
fn link_add_args(
    in_netns: Option<&str>,
    a: &VethEnd<'_>,
    b: &VethEnd<'_>,
    opts: &VethOptions,
) -> Vec<String> {
    let (mtu, queues) = (
        opts.mtu.map(|m| m.to_string()),
        opts.queues.map(|q| q.to_string()),
    );
    let per_end = |args: &mut Vec<String>, end: &VethEnd<'_>| {
        args.extend(["name".into(), end.name.into()]);
        if let Some(q) = &queues {
            args.extend([
                "numrxqueues".into(),
                q.clone(),
                "numtxqueues".into(),
                q.clone(),
            ]);
        }
        if let Some(m) = &mtu {
            args.extend(["mtu".into(), m.clone()]);
        }
        if let Some(ns) = end.netns {
            args.extend(["netns".into(), ns.into()]);
        }
    };
    let mut args: Vec<String> = Vec::new();
    if let Some(ns) = in_netns {
        args.extend(["-n".into(), ns.into()]);
    }
    args.extend(["link".into(), "add".into()]);
    per_end(&mut args, a);
    args.extend(["type".into(), "veth".into(), "peer".into()]);
    per_end(&mut args, b);
    args
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn args_in_one_namespace() {
        let opts = VethOptions {
            mtu: Some(9000),
            queues: Some(4),
        };
        let a = link_add_args(
            Some("ns"),
            &VethEnd::here("fa"),
            &VethEnd::here("fb"),
            &opts,
        );
        assert_eq!(
            a.join(" "),
            "-n ns link add name fa numrxqueues 4 numtxqueues 4 mtu 9000 type veth peer \
             name fb numrxqueues 4 numtxqueues 4 mtu 9000"
        );
    }

    #[test]
    fn args_across_namespaces() {
        let a = link_add_args(
            None,
            &VethEnd::in_netns("fplg0", "g"),
            &VethEnd::in_netns("fplr0", "r"),
            &VethOptions::default(),
        );
        assert_eq!(
            a.join(" "),
            "link add name fplg0 netns g type veth peer name fplr0 netns r"
        );
    }

    #[test]
    fn bad_names_are_refused_before_ip_runs() {
        let e = add(
            None,
            &VethEnd::here("0123456789abcdef"),
            &VethEnd::here("b"),
            &VethOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
