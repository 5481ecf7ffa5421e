//! IDX files (the MNIST format), plain or gzip-compressed.
//!
//! Layout: a big-endian header — two zero bytes, a type code (0x08 = unsigned byte), the number
//! of dimensions — then one u32 per dimension, then the data. Every declared size is checked
//! against limits and the bytes actually present before anything large is allocated, so a
//! lying 16-byte header cannot make nabla reserve gigabytes.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::dataset::{Dataset, Features};
use crate::error::NablaError;

/// The most data bytes one IDX file may declare (1 GiB: 20× MNIST's training images).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// A parsed IDX file: its dimensions and raw bytes.
#[derive(Debug, Clone)]
pub struct IdxArray {
    /// Sizes of each dimension; the first is the number of items.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with `expected_dims` dimensions (3 for images, 1 for
/// labels). Files starting with the gzip magic are decompressed on the fly.
pub fn read(path: &Path, expected_dims: usize) -> Result<IdxArray, NablaError> {
    let (file, size) = crate::io::source::open(path)?;
    let file_len = Some(size);
    let mut buffered = BufReader::new(file);
    let mut peek = [0u8; 2];
    let got = read_up_to(&mut buffered, &mut peek).map_err(|e| NablaError::io(path, e))?;
    let head = &peek[..got];
    let gz = head == [0x1f, 0x8b];
    let chained = head.chain(buffered);
    if gz {
        parse(path, GzDecoder::new(chained), None, expected_dims)
    } else {
        parse(path, chained, file_len, expected_dims)
    }
}

/// Parses IDX bytes already in memory (plain or gzip); `name` is used in messages. The fuzz
/// target comes in here.
pub fn read_bytes(name: &Path, bytes: &[u8], expected_dims: usize) -> Result<IdxArray, NablaError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse(name, GzDecoder::new(bytes), None, expected_dims)
    } else {
        parse(name, bytes, Some(bytes.len() as u64), expected_dims)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Maps a read error to a data error naming the file (gzip corruption shows up here).
fn read_error(path: &Path, what: &str, e: std::io::Error) -> NablaError {
    NablaError::data(path, what, format!("cannot read: {e}"))
}

fn parse(
    path: &Path,
    mut r: impl Read,
    file_len: Option<u64>,
    expected_dims: usize,
) -> Result<IdxArray, NablaError> {
    read_magic(path, &mut r, expected_dims)?;
    let dims = read_dims(path, &mut r, expected_dims)?;
    let declared = declared_bytes(path, &dims)?;
    let header_len = 4 + 4 * expected_dims as u64;
    if let Some(len) = file_len {
        let present = len.saturating_sub(header_len);
        if present < declared {
            return Err(NablaError::data(
                path,
                format!("byte {len}"),
                format!(
                    "file is cut short: dimensions {dims:?} declare {declared} data bytes, only {present} present"
                ),
            ));
        }
    }
    let data = read_data(path, &mut r, &dims, declared, header_len)?;
    Ok(IdxArray { dims, data })
}

/// Reads the 4-byte magic number: two zero bytes, 0x08 (unsigned bytes), `expected_dims`.
fn read_magic(path: &Path, r: &mut impl Read, expected_dims: usize) -> Result<(), NablaError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(r, &mut magic).map_err(|e| read_error(path, "header", e))?;
    if got == 0 {
        return Err(NablaError::data(
            path,
            "header",
            "empty file, expected an IDX header",
        ));
    }
    if got < 4 {
        return Err(NablaError::data(
            path,
            "header",
            format!("file ends after {got} bytes, inside the 4-byte IDX magic number"),
        ));
    }
    let expected_magic = 0x0800 | expected_dims as u32;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] as usize != expected_dims {
        return Err(NablaError::data(
            path,
            "header",
            format!(
                "magic number 0x{:08x}, expected 0x{expected_magic:08x} (unsigned bytes, {expected_dims} dimension{})",
                u32::from_be_bytes(magic),
                if expected_dims == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// Reads the size of each dimension (big-endian u32s).
fn read_dims(path: &Path, r: &mut impl Read, count: usize) -> Result<Vec<usize>, NablaError> {
    let mut dims = Vec::with_capacity(count);
    for d in 0..count {
        let mut b = [0u8; 4];
        let got = read_up_to(r, &mut b).map_err(|e| read_error(path, "header", e))?;
        if got < 4 {
            return Err(NablaError::data(
                path,
                "header",
                format!("file ends inside the size of dimension {}", d + 1),
            ));
        }
        dims.push(u32::from_be_bytes(b) as usize);
    }
    Ok(dims)
}

/// The data bytes the dimensions declare, refused beyond [`MAX_IDX_BYTES`] (or on overflow).
fn declared_bytes(path: &Path, dims: &[usize]) -> Result<u64, NablaError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&total| total <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            NablaError::data(
                path,
                "header",
                format!(
                    "dimensions {dims:?} declare more than the {MAX_IDX_BYTES} bytes nabla accepts in one IDX file"
                ),
            )
        })
}

/// Reads exactly `declared` data bytes and checks nothing follows them.
fn read_data(
    path: &Path,
    r: &mut impl Read,
    dims: &[usize],
    declared: u64,
    header_len: u64,
) -> Result<Vec<u8>, NablaError> {
    // Grow as bytes arrive (capped reservation), so a compressed file that lies about its size
    // fails on the missing bytes, not on the allocation.
    let mut data = Vec::with_capacity(declared.min(64 << 20) as usize);
    r.by_ref()
        .take(declared)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, "data", e))?;
    if (data.len() as u64) < declared {
        return Err(NablaError::data(
            path,
            format!("byte {}", header_len + data.len() as u64),
            format!(
                "file is cut short: dimensions {dims:?} declare {declared} data bytes, only {} present",
                data.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if read_up_to(r, &mut extra).map_err(|e| read_error(path, "data", e))? > 0 {
        return Err(NablaError::data(
            path,
            format!("byte {}", header_len + declared),
            format!("unexpected bytes after the {declared} data bytes the header declares"),
        ));
    }
    Ok(data)
}

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, NablaError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(NablaError::data(
        dir,
        "folder",
        format!("expected {name} or {name}.gz in this folder"),
    ))
}

/// Reads one images/labels pair into a dataset (pixels kept as bytes, scaled by 1/255).
/// Returns the dataset, its number of classes and the image shape (rows, columns).
fn read_pair(
    dir: &Path,
    images: &str,
    labels: &str,
    name: String,
) -> Result<(Dataset, usize, (usize, usize)), NablaError> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let img = read(&images_path, 3)?;
    let lab = read(&labels_path, 1)?;
    let (n, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.dims[0] != n {
        return Err(NablaError::data(
            &labels_path,
            "header",
            format!(
                "{} labels, but {} holds {n} images",
                lab.dims[0],
                images_path.display()
            ),
        ));
    }
    if n == 0 {
        return Err(NablaError::data(
            &images_path,
            "header",
            "zero images, expected at least one",
        ));
    }
    if rows == 0 || cols == 0 {
        return Err(NablaError::data(
            &images_path,
            "header",
            format!("images of {rows}×{cols} pixels, expected at least 1×1"),
        ));
    }
    let max_label = lab.data.iter().copied().max().unwrap_or(0) as usize;
    let labels = lab.data.iter().map(|&l| l as u32).collect();
    let dataset = Dataset::new(
        name,
        Features::U8 {
            values: img.data,
            scale: 1.0 / 255.0,
        },
        rows * cols,
        labels,
        (0..=max_label).map(|c| c.to_string()).collect(),
    )?;
    Ok((dataset, max_label + 1, (rows, cols)))
}

/// Refuses labels that are not class ids `0..k` with few gaps: the classes are `0..=max label`,
/// so one stray label 255 would make 256 classes, most of them without a single row. The rule:
/// at least half of the implied classes must occur (more than twice as many classes as
/// distinct labels is refused), naming the largest label, its count and its file.
fn dense_labels(
    dir: &Path,
    train: &Dataset,
    test: &Dataset,
    classes: usize,
) -> Result<(), NablaError> {
    let mut counts = vec![0usize; classes];
    for &l in train.labels().iter().chain(test.labels()) {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    if classes <= 2 * distinct {
        return Ok(());
    }
    let max = classes - 1;
    let file = if train.labels().contains(&(max as u32)) {
        "train-labels-idx1-ubyte"
    } else {
        "t10k-labels-idx1-ubyte"
    };
    let n = counts[max];
    Err(NablaError::data(
        dir,
        file,
        format!(
            "label {max} ({n} row{}) makes {classes} classes (0..={max}), but only {distinct} distinct labels occur; IDX labels must be class ids 0, 1, 2, … with few gaps (renumber the labels or remove the stray ones)",
            if n == 1 { "" } else { "s" }
        ),
    ))
}

/// Reads an MNIST-style folder: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each plain or `.gz`). Returns
/// `(train, test)`; both share one class list `0..=max label`.
pub fn read_dir(dir: &Path) -> Result<(Dataset, Dataset), NablaError> {
    read_dir_shaped(dir).map(|(train, test, _)| (train, test))
}

/// [`read_dir`], with the images' `(rows, columns)`.
pub fn read_dir_shaped(dir: &Path) -> Result<(Dataset, Dataset, (usize, usize)), NablaError> {
    if !dir.is_dir() {
        return Err(NablaError::data(
            dir,
            "path",
            "no such folder (expected a folder of IDX files or a data file)",
        ));
    }
    let base = dir.display().to_string();
    let (train, ctrain, train_shape) = read_pair(
        dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        base.clone(),
    )?;
    let (test, ctest, test_shape) = read_pair(
        dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        format!("{base} (test)"),
    )?;
    if train_shape != test_shape {
        return Err(NablaError::data(
            dir,
            "t10k-images-idx3-ubyte",
            format!(
                "test images are {}×{} pixels, expected {}×{} like the training images",
                test_shape.0, test_shape.1, train_shape.0, train_shape.1
            ),
        ));
    }
    let classes = ctrain.max(ctest);
    if classes < 2 {
        return Err(NablaError::data(
            dir,
            "train-labels-idx1-ubyte",
            "every label is 0, expected at least two classes",
        ));
    }
    dense_labels(dir, &train, &test, classes)?;
    let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    let relabel = |d: Dataset| -> Result<Dataset, NablaError> {
        let (name, dim) = (d.name().to_string(), d.dim());
        let labels = d.labels().to_vec();
        let features = d.features().clone();
        Dataset::new(name, features, dim, labels, names.clone())
    };
    Ok((relabel(train)?, relabel(test)?, train_shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    }

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn reads_plain_and_gzip_and_rejects_lies() {
        let dir = std::env::temp_dir().join(format!("nabla-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ok = header(0x0803, &[2, 2, 2]);
        ok.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let p = write(&dir, "ok", &ok);
        let a = read(&p, 3).unwrap();
        assert_eq!(a.dims, vec![2, 2, 2]);
        assert_eq!(a.data.len(), 8);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&ok).unwrap();
        let p = write(&dir, "ok.gz", &gz.finish().unwrap());
        assert_eq!(read(&p, 3).unwrap().data, a.data);

        let p = write(&dir, "magic", &header(0x0801, &[2, 2, 2]));
        assert!(
            read(&p, 3)
                .unwrap_err()
                .to_string()
                .contains("magic number")
        );

        let p = write(&dir, "short", &ok[..20]);
        assert!(read(&p, 3).unwrap_err().to_string().contains("cut short"));

        let p = write(
            &dir,
            "huge",
            &header(0x0803, &[u32::MAX, u32::MAX, u32::MAX]),
        );
        assert!(read(&p, 3).unwrap_err().to_string().contains("more than"));

        let p = write(&dir, "empty", &[]);
        assert!(read(&p, 3).unwrap_err().to_string().contains("empty"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
