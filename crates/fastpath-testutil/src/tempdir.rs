//! A minimal temporary directory, removed on drop (std only, so tests need no
//! extra dev-dependency).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under [`std::env::temp_dir`], removed with everything in
/// it when dropped, so a failing test (which unwinds) leaves nothing behind.
///
/// # Examples
///
/// ```
/// use fastpath_testutil::TempDir;
/// let dir = TempDir::new("fastpath-doc");
/// let file = dir.path().join("x.pcap");
/// std::fs::write(&file, b"x").unwrap();
/// let kept = dir.path().to_path_buf();
/// drop(dir);
/// assert!(!kept.exists());
/// ```
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<temp_dir>/<prefix>-<pid>-<n>`, `n` counting up within the
    /// process, so parallel tests never share one.
    ///
    /// # Panics
    ///
    /// If the directory cannot be created.
    #[track_caller]
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        TempDir(p)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn distinct_and_removed_on_drop() {
        let a = TempDir::new("fastpath-testutil");
        let b = TempDir::new("fastpath-testutil");
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir());
        std::fs::create_dir(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("sub/f"), b"x").unwrap();
        let p = a.path().to_path_buf();
        drop(a);
        assert!(!p.exists());
    }
}
