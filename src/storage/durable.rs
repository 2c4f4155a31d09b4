//! Small helpers for writes that must survive `kill -9` and power loss.
//!
//! A file is durable once its data and its directory entry are on disk: write, fsync the
//! file, and fsync every directory that gained an entry. Atomic replacement is
//! write-to-temporary, fsync, rename, fsync the directory.
//!
//! Modes are set explicitly at creation, whatever the umask: directories 0700 (the data
//! directory holds the signing key, and nothing in it is anyone else's to change), public
//! files (tiles, checkpoints, index runs, verifier keys) 0644, private files 0600.
//!
//! May import: `std` only (key files and the witness use it too).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The mode of every directory the tool creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of files anyone may read (their contents are public).
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// The mode of private files (keys, the lock, the catalog's records).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Options creating (or truncating) a file with `mode` for writing.
pub fn create_options(mode: u32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(mode);
    options
}

/// Creates `dir` and any missing parents with [`DIR_MODE`] (no fsync: for directories
/// whose contents are rebuilt anyway).
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// The directory holding `path`: its parent, or `.` for a bare file name (whose parent
/// is the empty path, which cannot be opened).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes `data` to `path` (truncating) and fsyncs the file. The caller fsyncs the
/// directory (several files usually share one).
pub fn write_and_sync(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = create_options(PUBLIC_FILE_MODE).open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents ([`DIR_MODE`]), fsyncing each parent that
/// gained an entry.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    // The empty path is the current directory (the parent of a bare relative name).
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_durable(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    sync_dir(parent_dir(dir))
}

/// Atomically replaces `path` with `data`: temporary file, fsync, rename, fsync dir.
pub fn replace_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_and_sync(&tmp, data)?;
    fs::rename(&tmp, path)?;
    sync_dir(parent_dir(path))
}

/// Creates a new file with mode 0600 (owner read/write only) holding `data`, durably.
/// Refuses to overwrite an existing file, so a key is never replaced by accident.
pub fn write_secret_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    sync_dir(parent_dir(path))
}

/// Creates a new world-readable file (0644, for public keys), durably; refuses to
/// overwrite.
pub fn write_public_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PUBLIC_FILE_MODE)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    sync_dir(parent_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("publisher.key")), Path::new("."));
        assert_eq!(
            parent_dir(Path::new("keys/publisher.key")),
            Path::new("keys")
        );
        assert_eq!(parent_dir(Path::new("/publisher.key")), Path::new("/"));
    }

    #[test]
    fn relative_directories_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all_durable(&nested).unwrap();
        assert!(nested.is_dir());
        create_dir_all_durable(Path::new("")).unwrap();
    }

    #[test]
    fn secret_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        write_secret_file(&path, b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_secret_file(&path, b"other").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }
}
