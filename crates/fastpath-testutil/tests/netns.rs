//! Tier 1 tests of the testutil guards themselves: root and a real kernel.
//!
//! Every test that creates a namespace asserts that its name is gone from
//! `/var/run/netns` afterwards; interface names are unique per test because
//! some checks look for them in the host namespace.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fastpath_harness::netns::{lock_path, Namespace, LOCK_DIR};
use fastpath_testutil::{
    assert_frames_eq, frame_seq, have_cmd, is_root, require, udp_frame, vlan_frame, NetNs,
    RawReceiver, RawSender, VethOptions, DST_MAC, REQUIRE_PRIV_ENV,
};

const WAIT: Duration = Duration::from_secs(2);

/// Inode of the calling thread's network namespace.
fn thread_netns() -> u64 {
    fs::metadata("/proc/thread-self/ns/net")
        .expect("stat /proc/thread-self/ns/net")
        .ino()
}

fn ns_file(name: &str) -> String {
    format!("/var/run/netns/{name}")
}

fn listed(name: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

fn cat(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_owned()
}

/// Runs `ip args` in the calling thread's namespace; true on exit 0.
fn ip_ok(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .expect("run ip")
        .status
        .success()
}

macro_rules! require_netns {
    () => {
        require!(is_root(), "needs root for network namespaces");
        require!(have_cmd("ip"), "needs `ip` from iproute2");
    };
}

#[test]
fn netns_created_entered_and_removed() {
    require_netns!();
    let outside = thread_netns();
    let ns = NetNs::new("fptu");
    let name = ns.name().to_owned();
    assert!(
        name.starts_with(&format!("fptu-{}-", std::process::id())),
        "{name}"
    );
    assert!(listed(&name), "{name} not in `ip netns list`");
    let inside = thread_netns();
    assert_ne!(inside, outside, "thread did not enter the namespace");
    assert_eq!(fs::metadata(ns_file(&name)).unwrap().ino(), inside);
    // lo is up; nothing else exists.
    let links = String::from_utf8(ns.exec("ip", ["-o", "link"]).output().unwrap().stdout).unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains(",UP"), "{links}");
    drop(ns);
    assert_eq!(thread_netns(), outside, "thread not restored");
    assert!(
        !listed(&name) && !Path::new(&ns_file(&name)).exists(),
        "{name} left behind"
    );
}

#[test]
fn netns_removed_after_panic() {
    require_netns!();
    let outside = thread_netns();
    let (tx, rx) = mpsc::channel();
    let r = std::panic::catch_unwind(move || {
        let ns = NetNs::new("fptu");
        tx.send(ns.name().to_owned()).unwrap();
        let _veth = ns.veth_pair("fptpa", "fptpb");
        panic!("deliberate panic inside a netns");
    });
    assert!(r.is_err());
    let name = rx.recv().unwrap();
    assert_eq!(
        thread_netns(),
        outside,
        "thread not restored after unwinding"
    );
    assert!(!listed(&name), "{name} left behind after panic");
}

/// Cleanup when the panic escapes the test function itself; checked by
/// `ip netns list` after the run (see the crate's report) and by
/// `netns_removed_after_panic` above.
#[test]
#[should_panic(expected = "deliberate test panic")]
fn netns_removed_when_test_panics() {
    if !is_root() {
        // `require!` would return without panicking and fail should_panic;
        // in CI mode (FASTPATH_REQUIRE_PRIV=1) fail with a non-matching panic.
        if std::env::var(REQUIRE_PRIV_ENV).is_ok_and(|v| v == "1") {
            panic!("requirement not met: needs root");
        }
        panic!("deliberate test panic (body skipped: not root)");
    }
    let ns = NetNs::new("fptu");
    let _veth = ns.veth_pair("fptqa", "fptqb");
    panic!("deliberate test panic in {}", ns.name());
}

#[test]
fn names_unique_across_threads() {
    require_netns!();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(|| {
                let outside = thread_netns();
                let a = NetNs::new("fptu");
                let ino_a = thread_netns();
                let b = NetNs::new("fptu"); // nested on the same thread
                let ino_b = thread_netns();
                assert_ne!(ino_a, ino_b);
                let names = vec![a.name().to_owned(), b.name().to_owned()];
                drop(b);
                assert_eq!(
                    thread_netns(),
                    ino_a,
                    "inner drop must restore the outer netns"
                );
                drop(a);
                assert_eq!(thread_netns(), outside);
                names
            })
        })
        .collect();
    let names: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate names: {names:?}");
    for n in &names {
        assert!(!listed(n), "{n} left behind");
    }
}

#[test]
fn ipv6_disabled_inside_only() {
    require_netns!();
    require!(
        Path::new("/proc/sys/net/ipv6").exists(),
        "kernel without IPv6"
    );
    let all = "/proc/sys/net/ipv6/conf/all/disable_ipv6";
    let default = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    let host = (cat(all), cat(default));
    let ns = NetNs::new("fptu");
    // /proc/sys/net follows the reading thread's namespace...
    assert_eq!((cat(all).as_str(), cat(default).as_str()), ("1", "1"));
    // ...and agrees with a process started inside it.
    let out = ns.exec("cat", [all, default]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n1\n");
    let veth = ns.veth_pair("fpt6a", "fpt6b");
    for ifname in [&veth.a, &veth.b] {
        assert_eq!(
            cat(&format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")),
            "1"
        );
    }
    drop(ns);
    assert_eq!((cat(all), cat(default)), host, "host sysctls changed");
}

#[test]
fn veth_exists_inside_not_outside() {
    require_netns!();
    let (a, b) = ("fptva", "fptvb");
    assert!(
        !ip_ok(&["link", "show", "dev", a]),
        "{a} already exists on the host"
    );
    let (to_main, from_worker) = mpsc::channel();
    let (to_worker, from_main) = mpsc::channel::<()>();
    // The namespace lives on a worker; this thread stays outside. (A thread
    // spawned *from* a setns'd thread would start inside the namespace.)
    let worker = thread::spawn(move || {
        let ns = NetNs::new("fptu");
        let veth = ns.veth_pair_with(
            a,
            b,
            &VethOptions {
                mtu: Some(9000),
                queues: None,
            },
        );
        assert!(ip_ok(&["link", "show", "dev", a]), "{a} not visible inside");
        assert_eq!(ns.ifindex(a).unwrap(), veth.a_index);
        assert_eq!(ns.ifindex(b).unwrap(), veth.b_index);
        to_main.send((ns.name().to_owned(), veth)).unwrap();
        from_main.recv().unwrap();
    });
    let (name, veth) = from_worker.recv().unwrap();
    assert_ne!(veth.a_index, veth.b_index);
    assert_ne!(veth.a_mac, veth.b_mac);
    assert_ne!(veth.a_mac, [0; 6]);
    assert!(
        !ip_ok(&["link", "show", "dev", a]),
        "{a} leaked to the host"
    );
    assert!(
        !ip_ok(&["link", "show", "dev", b]),
        "{b} leaked to the host"
    );
    let show = Command::new("ip")
        .args(["-n", &name, "-o", "link", "show", "dev", a])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("mtu 9000") && show.contains(",UP"), "{show}");
    assert!(
        show.contains("state UP"),
        "both ends up means carrier: {show}"
    );
    let mac = veth.a_mac.map(|x| format!("{x:02x}")).join(":");
    assert!(show.contains(&mac), "{show} vs {mac}");
    to_worker.send(()).unwrap();
    worker.join().unwrap();
    assert!(!listed(&name), "{name} left behind");
}

#[test]
fn veth_queue_count() {
    require_netns!();
    let ns = NetNs::new("fptu");
    let veth = ns.veth_pair_queues("fptma", "fptmb", 4);
    for ifname in [&veth.a, &veth.b] {
        // /sys in this process shows the host: read it through exec, which
        // remounts /sys inside the namespace.
        let out = ns
            .exec("ls", [format!("/sys/class/net/{ifname}/queues")])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        let count = |p: &str| out.split_whitespace().filter(|q| q.starts_with(p)).count();
        assert_eq!((count("rx-"), count("tx-")), (4, 4), "{ifname}: {out}");
    }
}

#[test]
fn set_down_and_up() {
    require_netns!();
    let ns = NetNs::new("fptu");
    let veth = ns.veth_pair("fptda", "fptdb");
    let state = |ifname: &str| {
        let out = Command::new("ip")
            .args(["-n", ns.name(), "-o", "link", "show", "dev", ifname])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("state UP")
    };
    assert!(state(&veth.a));
    ns.set_down(&veth.b).unwrap();
    assert!(!state(&veth.a), "peer down must drop a's carrier");
    ns.set_up(&veth.b).unwrap();
    assert!(state(&veth.a));
    assert!(ns.set_up("fptnope").is_err());
}

#[test]
fn raw_send_receive_byte_exact() {
    require_netns!();
    let ns = NetNs::new("fptu");
    let veth = ns.veth_pair("fptra", "fptrb");
    let rx = RawReceiver::new(&veth.b).unwrap();
    let tx = RawSender::new(&veth.a).unwrap();
    assert_eq!((tx.ifindex(), rx.ifindex()), (veth.a_index, veth.b_index));
    let frames: Vec<Vec<u8>> = (0..500u32)
        .map(|s| {
            udp_frame(
                s,
                [60, 61, 64, 128, 1000, 1514][s as usize % 6],
                DST_MAC,
                veth.a_mac,
            )
        })
        .collect();
    tx.send_all(&frames).unwrap();
    let got = rx.collect(frames.len(), WAIT).unwrap();
    assert_eq!(rx.stats().unwrap().drops, 0);
    assert_frames_eq(&got, &frames);
    // Nothing arrives on the sending side as incoming, nothing else on b.
    assert!(rx.recv_frame(Duration::from_millis(50)).unwrap().is_none());
    // Too big for the MTU: the kernel says so instead of truncating.
    assert!(tx.send(&udp_frame(0, 1515, DST_MAC, veth.a_mac)).is_err());
}

#[test]
fn vlan_tag_is_stripped_on_receive() {
    require_netns!();
    let ns = NetNs::new("fptu");
    let veth = ns.veth_pair("fptla", "fptlb");
    let rx = RawReceiver::new(&veth.b).unwrap();
    let sent = vlan_frame(42, 100, 7, DST_MAC, veth.a_mac);
    RawSender::new(&veth.a).unwrap().send(&sent).unwrap();
    let got = rx.collect(1, WAIT).unwrap();
    // The kernel moves the 802.1Q tag into skb metadata before the
    // AF_PACKET tap; recvfrom returns the frame without it.
    let untagged: Vec<u8> = sent[..12].iter().chain(&sent[16..]).copied().collect();
    assert_frames_eq(&got, &[untagged]);
    assert_eq!(frame_seq(&got[0]), Some(42));
}

#[test]
fn veth_is_quiet() {
    require_netns!();
    let ns = NetNs::new("fptu");
    let veth = ns.veth_pair("fptsa", "fptsb");
    let ra = RawReceiver::new(&veth.a).unwrap();
    let rb = RawReceiver::new(&veth.b).unwrap();
    // Flap the link so IPv6 (if it were on) would restart MLD reports
    // (~10 ms after up) and DAD (~0.5 s).
    for ifname in [&veth.a, &veth.b] {
        ns.set_down(ifname).unwrap();
    }
    for ifname in [&veth.a, &veth.b] {
        ns.set_up(ifname).unwrap();
    }
    for (end, r) in [("a", &ra), ("b", &rb)] {
        let f = r.recv_frame(Duration::from_millis(800)).unwrap();
        assert!(
            f.is_none(),
            "kernel sent a frame on {end}: {:02x?}",
            f.unwrap()
        );
    }
}

#[test]
fn stale_namespace_of_dead_process_is_removed() {
    require_netns!();
    // A pid that just exited; the kernel will not reuse it within this test
    // in practice (pid allocation is cyclic).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("fptst-{dead}-0");
    assert!(ip_ok(&["netns", "add", &stale]));
    let ns = NetNs::new("fptst");
    assert!(!listed(&stale), "stale {stale} not removed");
    assert!(listed(ns.name()));
}

/// A namespace whose name carries a pid this pid namespace does not have, as one made by a lab
/// or test in another pid namespace does, is kept while its owner holds its lock.
#[test]
fn live_namespace_of_another_pid_namespace_is_kept() {
    require_netns!();
    // Above any pid_max (2^22): no process here has this pid.
    let owner = Namespace::create("fptsl-4999999-0").unwrap();
    let ns = NetNs::new("fptsl");
    assert!(listed(owner.name()), "a live owner's namespace was removed");
    drop(ns);
    drop(owner);
    assert!(!listed("fptsl-4999999-0"));
    assert!(!lock_path("fptsl-4999999-0").exists(), "lock file left");
}

/// A namespace whose owner died (`kill -9`) still has its lock file, but nobody holds the
/// lock: it is removed, whatever pid its name carries (here our own, which is alive).
#[test]
fn namespace_with_a_free_lock_is_removed() {
    require_netns!();
    let stale = format!("fptsk-{}-999999", std::process::id());
    assert!(ip_ok(&["netns", "add", &stale]));
    fs::create_dir_all(LOCK_DIR).unwrap();
    fs::write(lock_path(&stale), "").unwrap();
    let _ns = NetNs::new("fptsk");
    assert!(!listed(&stale), "stale {stale} not removed");
    assert!(!lock_path(&stale).exists(), "lock file left");
}

/// Two owners of one name cannot both exist: the second `create` fails while the first lives,
/// and succeeds once it is gone.
#[test]
fn a_namespace_name_has_one_owner() {
    require_netns!();
    let name = format!("fptso-{}-0", std::process::id());
    let first = Namespace::create(&name).unwrap();
    let e = Namespace::create(&name).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("belongs to a live process"), "{e}");
    drop(first);
    drop(Namespace::create(&name).unwrap());
    assert!(!listed(&name));
}

#[test]
fn sender_and_receiver_report_missing_interface() {
    require_netns!();
    let _ns = NetNs::new("fptu");
    let e = RawSender::new("fptmissing").unwrap_err();
    assert!(e.to_string().contains("fptmissing"), "{e}");
    assert!(RawReceiver::new("fptmissing").is_err());
}
