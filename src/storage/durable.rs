//! Small helpers for writes that must survive `kill -9` and power loss.
//!
//! A file is durable once its data and its directory entry are on disk: write, fsync the
//! file, and fsync every directory that gained an entry. Atomic replacement is
//! write-to-temporary, fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `data` to `path` (truncating) and fsyncs the file. The caller fsyncs the
/// directory (several files usually share one).
pub fn write_and_sync(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path`: its parent, or `.` for a bare relative file name
/// (whose `parent()` is the empty path, which cannot be opened or created).
fn parent_dir(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// Creates `dir` and any missing parents, fsyncing each parent that gained an entry.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = parent_dir(dir) {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = parent_dir(dir) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Atomically replaces `path` with `data`: temporary file, fsync, rename, fsync dir.
pub fn replace_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_and_sync(&tmp, data)?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = parent_dir(path) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Creates a new file with mode 0600 (owner read/write only) holding `data`, durably.
/// Refuses to overwrite an existing file, so a key is never replaced by accident.
pub fn write_secret_file(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    if let Some(parent) = parent_dir(path) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Creates a new world-readable file (for public keys), durably; refuses to overwrite.
pub fn write_public_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    if let Some(parent) = parent_dir(path) {
        sync_dir(parent)?;
    }
    Ok(())
}
