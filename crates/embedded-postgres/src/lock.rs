//! The data directory's lock: one supervisor per directory. The lock is an
//! advisory file lock, so it goes away with the process however it ends,
//! and a cluster left running by a supervisor that was killed is taken over
//! by the next one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "sluice.lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            Error::failed(
                "locking the data directory",
                format!("{}: {e}", path.display()),
            )
        })
}

fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Takes the lock of `data_dir`, writing this process's id into it.
/// [`Error::InUse`] names the process holding it.
pub fn acquire(data_dir: &Path) -> Result<DirLock, Error> {
    let path: PathBuf = data_dir.join(LOCK_FILE);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            let written = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| writeln!(file, "{}", std::process::id()));
            // The id is for messages only; a lock without it still locks.
            let _ = written;
            Ok(DirLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => Err(Error::InUse {
            data_dir: data_dir.to_path_buf(),
            pid: holder(&mut file),
        }),
        Err(TryLockError::Error(e)) => Err(Error::failed(
            "locking the data directory",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// True when another process holds the lock of `data_dir`.
pub fn held_elsewhere(data_dir: &Path) -> bool {
    let path = data_dir.join(LOCK_FILE);
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_says_who_holds_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        assert!(held_elsewhere(dir.path()));
        match acquire(dir.path()) {
            Err(Error::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        assert!(!held_elsewhere(dir.path()));
        let _again = acquire(dir.path()).unwrap();
    }
}
