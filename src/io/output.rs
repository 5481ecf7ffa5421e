//! Safe output files: every file nabla writes (models, checkpoints, plots, histories, metrics,
//! configs) goes through [`write_atomic`] or [`commit`], which
//!
//! - write a regular file atomically: a temporary file in the target's own folder, flushed to
//!   disk, then renamed over the target (a crash leaves the old file or the new one, never half);
//! - follow a symlink to its target, so the link stays a link and the file it points to is
//!   replaced (atomically, in the target's folder);
//! - stream into a character device or FIFO (`--out /dev/null`, a pipe) without ever renaming
//!   over it, so the device survives;
//! - refuse a folder or any other kind of file;
//! - remove stale temporary files in the folder they write to, left by a write that was killed,
//!   but only those whose writing process is gone.
//!
//! [`check_file`] and [`check_folder`] are the pre-flight checks a front end runs before any
//! long work, and [`same_file`] tells whether an output would overwrite an input.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::NablaError;

/// What a path names, for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Nothing yet: a new regular file.
    Missing,
    /// A regular file, replaced atomically.
    Regular,
    /// A character device or a FIFO: written as a stream.
    Stream,
}

fn refuse(path: &Path, message: impl Into<String>) -> NablaError {
    NablaError::data(path, "output", message)
}

/// `path` with every symlink along its last component followed (a dangling link resolves to
/// the file it would create).
pub fn resolve(path: &Path) -> Result<PathBuf, NablaError> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&path).map_err(|e| NablaError::io(&path, e))?;
                path = match path.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(refuse(&path, "too many levels of symbolic links"))
}

/// The folder a file at `path` lives in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What `path` (already resolved) is, refusing folders and other special files.
fn target_kind(path: &Path) -> Result<Target, NablaError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Missing),
        Err(e) => return Err(NablaError::io(path, e)),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(Target::Regular);
    }
    if kind.is_dir() {
        return Err(refuse(path, "is a folder; expected a file name"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() || kind.is_fifo() {
            return Ok(Target::Stream);
        }
    }
    Err(refuse(
        path,
        "is neither a regular file, a character device nor a FIFO; refusing to write over it",
    ))
}

/// Pre-flight for an output file: the path can be written (its folder exists and is writable,
/// it is not a folder), checked by creating and removing a probe file beside it. Returns what
/// it names.
pub fn check_file(path: &Path) -> Result<Target, NablaError> {
    if path.as_os_str().is_empty() {
        return Err(refuse(path, "an empty file name"));
    }
    let real = resolve(path)?;
    let kind = target_kind(&real)?;
    if kind == Target::Stream {
        return Ok(kind);
    }
    if real.file_name().is_none() {
        return Err(refuse(path, "not a file name"));
    }
    let dir = folder_of(&real);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => probe(&dir).map_err(|e| {
            refuse(
                path,
                format!("cannot write into the folder {}: {e}", dir.display()),
            )
        })?,
        Ok(_) => {
            return Err(refuse(path, format!("{} is not a folder", dir.display())));
        }
        Err(_) => {
            return Err(refuse(
                path,
                format!("the folder {} does not exist", dir.display()),
            ));
        }
    }
    Ok(kind)
}

/// Pre-flight for an output folder: it exists or can be created (it is created), and files can
/// be written in it.
pub fn check_folder(dir: &Path) -> Result<(), NablaError> {
    if dir.as_os_str().is_empty() {
        return Err(refuse(dir, "an empty folder name"));
    }
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(refuse(dir, "exists and is not a folder")),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir)
            .map_err(|e| refuse(dir, format!("cannot create the folder: {e}")))?,
    }
    probe(dir).map_err(|e| refuse(dir, format!("cannot write into the folder: {e}")))
}

/// Creates and removes a probe file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(format!(".nabla-probe.tmp{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)?;
    std::fs::remove_file(&p)
}

/// The temporary file a write of `target` goes through: `.NAME.tmpPID`, or `.STEM.tmpPID.EXT`
/// when `keep_extension` (writers that choose a format by extension).
pub fn temp_path(target: &Path, keep_extension: bool) -> PathBuf {
    let dir = folder_of(target);
    let pid = std::process::id();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match (keep_extension, target.extension(), target.file_stem()) {
        (true, Some(ext), Some(stem)) => dir.join(format!(
            ".{}.tmp{pid}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => dir.join(format!(".{name}.tmp{pid}")),
    }
}

/// The process id in a temporary file's name (`.x.tmp123` or `.x.tmp123.png`).
fn temp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let at = name.rfind(".tmp")?;
    let rest = &name[at + 4..];
    let digits: &str = rest.split('.').next()?;
    if digits.is_empty() || rest.len() > digits.len() + 1 + 8 {
        return None;
    }
    digits.parse().ok()
}

/// Whether the process `pid` is gone (unknown on systems without `/proc`: assumed alive).
fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes temporary files in `dir` left by writes whose process is gone; returns how many.
pub fn clean_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_pid) else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular
            && pid != std::process::id()
            && process_gone(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to `path` safely (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NablaError> {
    commit(path, false, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
    .map(|_| ())
    .or_else(|e| match e {
        Committed::Stream(real) => stream(&real, bytes),
        Committed::Failed(e) => Err(e),
    })
}

/// Why [`commit`] did not rename a temporary file into place.
#[derive(Debug)]
pub enum Committed {
    /// The target is a device or FIFO: write it as a stream instead (resolved path).
    Stream(PathBuf),
    /// Writing failed.
    Failed(NablaError),
}

/// Lets `write` fill a temporary file beside the (resolved) target, then renames it into place
/// durably; returns the resolved target. With `keep_extension` the temporary file ends with the
/// target's extension. A device or FIFO target is not written: [`Committed::Stream`] says so.
pub fn commit(
    path: &Path,
    keep_extension: bool,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<PathBuf, Committed> {
    let real = resolve(path).map_err(Committed::Failed)?;
    match target_kind(&real).map_err(Committed::Failed)? {
        Target::Stream => return Err(Committed::Stream(real)),
        Target::Missing | Target::Regular => {}
    }
    if real.file_name().is_none() {
        return Err(Committed::Failed(refuse(path, "not a file name")));
    }
    let dir = folder_of(&real);
    clean_stale(&dir);
    let tmp = temp_path(&real, keep_extension);
    let result = (|| {
        write(&tmp)?;
        std::fs::rename(&tmp, &real)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map(|()| real.clone()).map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Committed::Failed(NablaError::io(path, e))
    })
}

/// Writes `bytes` into a device or FIFO as a stream, never truncating or replacing it.
pub fn stream(path: &Path, bytes: &[u8]) -> Result<(), NablaError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| NablaError::io(path, e))?;
    f.write_all(bytes).map_err(|e| NablaError::io(path, e))
}

/// Whether `a` and `b` name the same existing file (same device and inode, through links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt;
            x.dev() == y.dev() && x.ino() == y.ino() && x.is_file()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nabla-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temp_names_carry_the_pid() {
        assert_eq!(temp_pid(".m.safetensors.tmp123"), Some(123));
        assert_eq!(temp_pid(".learning_curves.tmp77.png"), Some(77));
        assert_eq!(temp_pid("m.safetensors"), None);
        assert_eq!(temp_pid(".x.tmpabc"), None);
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_target_is_replaced() {
        let d = dir("link");
        std::fs::write(d.join("real"), "old").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("real", d.join("link")).unwrap();
            write_atomic(&d.join("link"), b"new").unwrap();
            assert!(
                std::fs::symlink_metadata(d.join("link"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(std::fs::read_to_string(d.join("real")).unwrap(), "new");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stale_temp_files_of_dead_processes_go() {
        let d = dir("stale");
        // pid 4194304 is above Linux's pid_max: never a live process.
        std::fs::write(d.join(".m.safetensors.tmp4194304"), "x").unwrap();
        let mine = d.join(format!(".m.safetensors.tmp{}", std::process::id()));
        std::fs::write(&mine, "x").unwrap();
        if Path::new("/proc/self").exists() {
            assert_eq!(clean_stale(&d), 1);
            assert!(mine.exists());
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn folders_are_refused() {
        let d = dir("folder");
        assert!(check_file(&d).is_err());
        assert!(write_atomic(&d, b"x").is_err());
        assert!(check_file(&d.join("missing").join("m")).is_err());
        assert!(check_file(&d.join("m")).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
