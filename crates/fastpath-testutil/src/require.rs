//! Probing for privileges and tools, and skipping tests that lack them.

use std::env;
use std::fmt;
use std::io::Write as _;
use std::path::Path;

use fastpath_harness::process::{find_on_path, is_executable};

/// Environment variable that turns every [`require!`](crate::require) skip
/// into a failure. CI (`.ci/run`) sets it to `1`.
pub const REQUIRE_PRIV_ENV: &str = "FASTPATH_REQUIRE_PRIV";

/// Skips the current test unless `cond` holds.
///
/// `require!(cond, "reason")` (or `require!(cond, "fmt {}", args)`): when
/// `cond` is false, prints `SKIP <crate>::<test>: <reason>` to stderr
/// (uncaptured, so it shows in `cargo test` output) and
/// `return`s from the enclosing function (which must return `()`). If
/// `FASTPATH_REQUIRE_PRIV=1` is set it panics with the reason instead, so CI
/// never passes by skipping.
///
/// # Examples
///
/// ```
/// use fastpath_testutil::{is_root, require};
///
/// fn needs_root() {
///     require!(is_root(), "needs root for netns");
///     // ... privileged test body ...
/// }
/// # if std::env::var_os("FASTPATH_REQUIRE_PRIV").is_none() { needs_root(); }
/// ```
#[macro_export]
macro_rules! require {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            $crate::__require_failed(::core::module_path!(), ::core::format_args!($($reason)+));
            return;
        }
    };
}

/// Implementation of [`require!`]; not public API.
#[doc(hidden)]
#[track_caller]
pub fn __require_failed(module: &str, reason: fmt::Arguments<'_>) {
    let test = test_name(module);
    if env::var(REQUIRE_PRIV_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: requirement not met and {REQUIRE_PRIV_ENV}=1: {reason}");
    }
    // Write to the stderr handle, not eprintln!: libtest captures the
    // print macros of passing tests, and a skip must stay visible.
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
}

/// libtest names each test thread after the test path within its crate
/// (`mod::test_fn`); prefix the crate name from `module`. Falls back to
/// the module path when the thread is unnamed or is `main`.
fn test_name(module: &str) -> String {
    let krate = module.split("::").next().unwrap_or(module);
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{krate}::{name}"),
        _ => module.to_owned(),
    }
}

/// True if `name` is an executable file in one of the `PATH` directories
/// (or, if it contains a `/`, is itself an executable file).
pub fn have_cmd(name: &str) -> bool {
    if name.contains('/') {
        return is_executable(Path::new(name));
    }
    find_on_path(name).is_some()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn have_cmd_finds_sh() {
        assert!(have_cmd("sh"));
        assert!(have_cmd("/bin/sh"));
        assert!(!have_cmd("fastpath-no-such-command-xyz"));
        assert!(!have_cmd("/etc/passwd")); // not executable
    }

    #[test]
    fn test_name_uses_thread_name() {
        let name = std::thread::current().name().map(str::to_owned);
        let got = test_name(module_path!());
        match name.as_deref() {
            Some(n) if n != "main" => assert_eq!(got, format!("fastpath_testutil::{n}")),
            _ => assert_eq!(got, module_path!()),
        }
    }

    #[test]
    fn require_true_continues() {
        let mut reached = false;
        let mut run = || {
            crate::require!(1 + 1 == 2, "always");
            reached = true;
        };
        run();
        assert!(reached);
    }

    #[test]
    fn require_false_returns_early() {
        if env::var(REQUIRE_PRIV_ENV).is_ok_and(|v| v == "1") {
            // In CI mode a false requirement panics; checked below.
            let r = std::panic::catch_unwind(|| {
                crate::require!(false, "forced {}", "skip");
            });
            assert!(r.is_err());
            return;
        }
        let mut reached = false;
        let mut run = || {
            crate::require!(false, "forced {}", "skip");
            reached = true;
        };
        run();
        assert!(!reached);
    }
}
