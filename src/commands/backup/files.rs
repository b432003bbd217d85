//! Files written so that a crash leaves either the old file or the complete new one: a
//! temporary name, fsync, rename, then fsync of the folder.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Problem;
use crate::private_file::PRIVATE;

/// Makes `dir` when missing (mode 0700); refuses one that is not a folder or holds anything.
pub(super) fn prepare_empty_dir(dir: &Path) -> Result<(), Problem> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(entry) => {
                let name = entry
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(Problem::usage(format!(
                    "{} is not empty (it holds {name:?}): give a new folder or an empty one, \
                     so no earlier backup is mixed with this one",
                    dir.display()
                )))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .map_err(|e| Problem::io(format!("creating {}", dir.display()), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Problem::usage(format!(
            "{} exists and is not a folder",
            dir.display()
        ))),
        Err(e) => Err(Problem::io(dir.display(), e)),
    }
}

/// Flushes a file's data to the disk.
pub(super) fn sync_file(path: &Path) -> Result<(), Problem> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Problem::io(path.display(), e))
}

/// Flushes `path` to the disk every 10 ms while it is being written, until the returned
/// guard is dropped: what a final flush has left to write stays small.
pub(super) fn flush_while_written(path: &Path) -> impl Drop {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (done, path) = (stop.clone(), path.to_path_buf());
    std::thread::spawn(move || {
        let mut file = None;
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(10));
            if file.is_none() {
                file = File::open(&path).ok();
            }
            if let Some(f) = &file {
                // A failed step is left to the final flush, which reports its error.
                let _ = f.sync_data();
            }
        }
    });
    Stop(stop)
}

/// Flushes a folder's entries (a rename in it) to the disk.
pub(super) fn sync_dir(dir: &Path) -> Result<(), Problem> {
    // Only Unix opens a folder as a file; elsewhere the rename is as durable as it gets.
    #[cfg(unix)]
    sync_file(dir)?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Copies `from` to `to` through a temporary name beside it, created with `mode` (Unix),
/// synced, then renamed over `to`.
pub(super) fn copy_synced(from: &Path, to: &Path, mode: Option<u32>) -> Result<(), Problem> {
    let mut source = File::open(from).map_err(|e| Problem::io(from.display(), e))?;
    write_with(to, mode, |file| {
        std::io::copy(&mut source, file).map(|_| ())
    })
}

/// Writes `bytes` to `to` the same way as [`copy_synced`].
pub(super) fn write_synced(to: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), Problem> {
    write_with(to, mode, |file| file.write_all(bytes))
}

fn write_with(
    to: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), Problem> {
    let partial = beside(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let written = crate::private_file::create_new(mode)
        .open(&partial)
        .and_then(|mut file| {
            fill(&mut file)?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(Problem::io(format!("writing {}", to.display()), e));
    }
    std::fs::rename(&partial, to)
        .map_err(|e| Problem::io(format!("renaming to {}", to.display()), e))?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Copies the identification key file, readable by its owner only.
pub(super) fn copy_key(from: &Path, to: &Path) -> Result<(), Problem> {
    copy_synced(from, to, Some(PRIVATE))
}

/// A file's size and SHA-256 (hex).
pub(super) fn digest(path: &Path) -> Result<(u64, String), Problem> {
    let mut file = File::open(path).map_err(|e| Problem::io(path.display(), e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| Problem::io(path.display(), e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_copy_is_private_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("k"), dir.path().join("sub-k"));
        std::fs::write(&from, "the-key\n").unwrap();
        copy_key(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"the-key\n");
        assert!(!beside(&to, ".partial").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&to).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_folder_holding_anything_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        prepare_empty_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("old"), "x").unwrap();
        let problem = prepare_empty_dir(dir.path()).unwrap_err();
        assert_eq!(problem.code, 2);
        assert!(problem.message.contains("not empty"), "{}", problem.message);
    }
}
