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

/// fsyncs a directory so that entries created or renamed in it are durable. The empty
/// path (the parent of a bare relative name such as `catalog-data`) is the current
/// directory.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, fsyncing each parent that gained an entry.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    // The empty path is the parent of a bare relative name: the current directory.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Atomically replaces `path` with `data`: temporary file, fsync, rename, fsync dir.
pub fn replace_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_and_sync(&tmp, data)?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
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
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Creates a new world-readable file (for public keys), durably; refuses to overwrite.
pub fn write_public_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_relative_names_have_the_current_directory_as_parent() {
        // `Path::new("catalog-data").parent()` is the empty path.
        let parent = Path::new("catalog-data").parent().unwrap();
        assert!(parent.as_os_str().is_empty());
        create_dir_all_durable(parent).unwrap();
        sync_dir(parent).unwrap();
    }
}
