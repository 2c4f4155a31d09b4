//! One writer per data directory: an exclusive advisory `flock` on `DATA/lock`, held for
//! as long as the log is open by `serve` or any `--data` command. The holder writes its
//! PID into the file, so that a second writer fails at once naming it. The kernel
//! releases the lock when the process exits, however it exits, so a `kill -9` leaves
//! nothing to clean up (a stale PID in the file is simply overwritten).
//!
//! Read-only commands (`fsck`, `replay --data`) take no lock and may run beside a live
//! writer: they read one checkpoint and only the tiles it covers, which a writer never
//! changes (it writes tiles beyond the checkpoint, swaps the checkpoint by rename, and
//! removes a partial tile only once its full tile is durable, which the reader then cuts
//! the partial from). They open the directory without the writer's recovery steps
//! ([`super::PosixLock::open_read_only`]).
//!
//! May import: `storage::durable` and the storage error.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::storage::durable::create_dir_all_durable;
use crate::storage::StorageError;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "lock";

/// The writer's lock on a data directory; released on drop (or when the process exits).
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the writer's lock on `data_dir` (created if missing), or fails at once with
    /// [`StorageError::Locked`] if another process holds it, naming that process.
    pub fn exclusive(data_dir: &Path) -> Result<DataDirLock, StorageError> {
        let mut lock = DataDirLock::take(data_dir)?;
        let pid = format!("{}\n", std::process::id());
        let written = lock
            .file
            .set_len(0)
            .and_then(|()| lock.file.rewind())
            .and_then(|()| lock.file.write_all(pid.as_bytes()));
        written.map_err(|e| StorageError::io(format!("writing {}", lock.path.display()), e))?;
        Ok(lock)
    }

    fn take(data_dir: &Path) -> Result<DataDirLock, StorageError> {
        create_dir_all_durable(data_dir)
            .map_err(|e| StorageError::io(format!("creating {}", data_dir.display()), e))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DataDirLock { file, path }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                Err(StorageError::Locked(held_by(&mut file, data_dir)))
            }
            Err(e) => Err(StorageError::io(
                format!("locking {}", path.display()),
                io::Error::from(e),
            )),
        }
    }
}

/// Who holds the lock, as the file tells.
fn held_by(file: &mut File, data_dir: &Path) -> String {
    let mut text = String::new();
    let pid = file
        .read_to_string(&mut text)
        .ok()
        .and_then(|_| text.trim().parse::<u32>().ok());
    let holder = match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_string(),
    };
    format!(
        "{} is already in use by {holder} (it holds {}); one log has one writer: stop that \
         process first, or send it requests with --server",
        data_dir.display(),
        data_dir.join(LOCK_FILE).display()
    )
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // The next writer finds no holder named.
        let _ = self.file.set_len(0);
        // Unlock explicitly rather than by closing the file: an `flock` belongs to the
        // open file description, which a child forked by any thread of this process
        // shares until its `exec` closes it (`O_CLOEXEC`). Closing our descriptor alone
        // would leave the lock held for that moment, and a writer reopening the
        // directory in this process would be refused.
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DataDirLock::exclusive(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(held.trim(), std::process::id().to_string());
        let error = DataDirLock::exclusive(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("process {}", std::process::id())),
            "{error}"
        );
        drop(writer);
        DataDirLock::exclusive(dir.path()).unwrap();
    }

    #[test]
    fn the_lock_is_released_on_drop_even_while_a_duplicate_descriptor_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DataDirLock::exclusive(dir.path()).unwrap();
        // What a child forked between `fork` and `exec` holds: another descriptor of
        // the same open file description.
        let duplicate = writer.file.try_clone().unwrap();
        drop(writer);
        DataDirLock::exclusive(dir.path()).unwrap();
        drop(duplicate);
    }
}
