//! Files that hold secrets or one person's data: created new, readable by their owner only.

use std::fs::OpenOptions;

/// Readable and writable by the owner alone.
pub const PRIVATE: u32 = 0o600;

/// Options that create a new file for writing (failing if it exists), with `mode` on Unix.
pub fn create_new(mode: Option<u32>) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}
