//! Build script: does nothing unless the cargo feature `dpdk` is on.
//!
//! With `dpdk`: finds the system DPDK with pkg-config (`libdpdk`), compiles the C shim
//! `csrc/dpdk_shim.c` (wrappers for DPDK's static-inline fast-path functions) with `cc`, and links
//! the DPDK libraries. DPDK is linked as shared libraries, so its EAL loads the poll-mode drivers
//! (net_af_packet, net_af_xdp, net_null, net_ring, PCI PMDs) at run time from its plugin
//! directory (`RTE_EAL_PMD_PATH`); nothing is linked with `--whole-archive`.
//!
//! Without the feature the default build compiles no C and needs nothing but cargo.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::process;

    /// The pkg-config module the Debian/Ubuntu package `libdpdk-dev` installs.
    const MODULE: &str = "libdpdk";
    /// Oldest DPDK with the API used here (`rte_eth_*` names with `RTE_ETH_` constants, 21.11+).
    const MIN_VERSION: &str = "21.11";

    pub(super) fn build() {
        println!("cargo:rerun-if-changed=csrc/dpdk_shim.c");
        for var in ["PKG_CONFIG", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR"] {
            println!("cargo:rerun-if-env-changed={var}");
        }
        let lib = match pkg_config::Config::new()
            .atleast_version(MIN_VERSION)
            // Shared libraries: EAL then finds its driver plugins itself.
            .statik(false)
            // Link metadata is printed below, after the shim: the static shim must come before
            // the shared libraries it uses on the linker command line (rustc links with
            // `--as-needed`).
            .cargo_metadata(false)
            .probe(MODULE)
        {
            Ok(lib) => lib,
            Err(e) => {
                eprintln!(
                    "\nerror: the `dpdk` feature needs DPDK >= {MIN_VERSION} found by pkg-config \
                     (module `{MODULE}`), and it was not found:\n{e}\n\
                     fix: install it, e.g. `apt-get install libdpdk-dev pkg-config` \
                     (Debian/Ubuntu), or set PKG_CONFIG_PATH to the directory holding \
                     libdpdk.pc; or build without `--features dpdk`\n"
                );
                process::exit(1);
            }
        };
        let mut cc = cc::Build::new();
        cc.file("csrc/dpdk_shim.c")
            .warnings(true)
            .flag_if_supported("-Wno-unused-parameter")
            .opt_level(3);
        for p in &lib.include_paths {
            cc.include(p);
        }
        // pkg-config's cflags also carry `-include rte_config.h` and `-march=...`: pass them on.
        for flag in cflags_other(MODULE) {
            cc.flag(&flag);
        }
        for (k, v) in &lib.defines {
            cc.define(k, v.as_deref());
        }
        cc.compile("fastpath_dpdk_shim");
        for p in &lib.link_paths {
            println!("cargo:rustc-link-search=native={}", p.display());
        }
        for l in &lib.libs {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
    }

    /// The `--cflags-only-other` part of pkg-config's answer (not `-I`/`-D`, which `pkg_config`
    /// already parsed), split on whitespace, keeping `-include X` as two flags.
    fn cflags_other(module: &str) -> Vec<String> {
        let out = process::Command::new(std::env::var("PKG_CONFIG").unwrap_or("pkg-config".into()))
            .args(["--cflags-only-other", module])
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}
