//! Guarded input files: every file nabla reads (data, models, checkpoints, configs, run
//! histories) is opened through [`open`], which
//!
//! - follows symlinks and accepts only a regular file, checked before a byte is read (and again
//!   on the opened handle), so `/dev/zero`, `/dev/urandom`, a FIFO or a socket is refused with
//!   a one-line message instead of being read until memory runs out or waiting forever;
//! - returns the file's size, which bounds every later read: [`read_at_most`] refuses a file
//!   above a limit before reading it, [`gunzip`] refuses a gzip stream that decompresses to
//!   more than [`MAX_GZIP_RATIO`] times its size (at least 64 MiB), a decompression bomb.

use std::io::Read;
use std::path::Path;

use crate::error::NablaError;

/// A gzip file may decompress to at most this many times its size (or 64 MiB, if more): text
/// compresses about 3-10×; a stream far beyond that is a decompression bomb. The same bound as
/// training data's.
pub const MAX_GZIP_RATIO: u64 = crate::data::csv::MAX_GZIP_RATIO;

/// The most a gzip file of `size` bytes may decompress to (see [`MAX_GZIP_RATIO`]).
pub fn gzip_limit(size: u64) -> u64 {
    size.saturating_mul(MAX_GZIP_RATIO).max(64 << 20)
}

fn refuse(path: &Path, message: impl Into<String>) -> NablaError {
    NablaError::data(path, "path", message)
}

/// What a file that is not a regular file is, in words.
fn kind_name(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` (symlinks followed) is a regular file and returns its size; anything
/// else is refused before it is opened. A missing file is an I/O error naming the path.
pub fn check_regular(path: &Path) -> Result<u64, NablaError> {
    let meta = std::fs::metadata(path).map_err(|e| NablaError::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(
            path,
            format!(
                "is {}; expected a regular file (inputs are read from files, never from devices or pipes)",
                kind_name(meta.file_type())
            ),
        ));
    }
    Ok(meta.len())
}

/// Opens `path` for reading after [`check_regular`]; returns the file and its size.
pub fn open(path: &Path) -> Result<(std::fs::File, u64), NablaError> {
    check_regular(path)?;
    let file = std::fs::File::open(path).map_err(|e| NablaError::io(path, e))?;
    // The path may have been swapped between the check and the open.
    let meta = file.metadata().map_err(|e| NablaError::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(
            path,
            format!(
                "is {}; expected a regular file",
                kind_name(meta.file_type())
            ),
        ));
    }
    Ok((file, meta.len()))
}

/// Reads the whole regular file `path`, refusing one larger than `limit` bytes (`what` names
/// the kind of file in the message) before reading it.
pub fn read_at_most(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, NablaError> {
    let (file, size) = open(path)?;
    if size > limit {
        return Err(NablaError::data(
            path,
            "file",
            format!("{size} bytes, more than the {limit} bytes a {what} may have"),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // A file that grows while read is cut at the limit and refused.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| NablaError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(NablaError::data(
            path,
            "file",
            format!("grew past {limit} bytes while being read"),
        ));
    }
    Ok(bytes)
}

/// Decompresses the gzip bytes of `path` (its whole content, `compressed`), refusing more than
/// [`gzip_limit`] of its size.
pub fn gunzip(path: &Path, compressed: &[u8]) -> Result<Vec<u8>, NablaError> {
    let limit = gzip_limit(compressed.len() as u64);
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            NablaError::data(
                path,
                "file",
                format!("cannot decompress: {e} (a truncated or corrupt gzip file?)"),
            )
        })?;
    if out.len() as u64 > limit {
        return Err(NablaError::data(
            path,
            "file",
            format!(
                "decompresses to more than {limit} bytes (MAX_GZIP_RATIO: {MAX_GZIP_RATIO}× the file, at least 64 MiB); refusing a decompression bomb"
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_before_reading() {
        #[cfg(unix)]
        {
            let e = check_regular(Path::new("/dev/zero")).unwrap_err();
            assert!(e.to_string().contains("character device"), "{e}");
        }
        let e = check_regular(&std::env::temp_dir()).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..70 {
            gz.write_all(&zeros).unwrap();
        }
        let bytes = gz.finish().unwrap();
        let e = gunzip(Path::new("bomb.csv"), &bytes).unwrap_err();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
    }
}
