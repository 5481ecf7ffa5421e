//! New rows for a saved model: reads a CSV file (columns matched by name to the model's
//! [`Preprocess`]) or IDX images into encoded rows in the model's feature order, plus the
//! targets when the file has the target column. It does no scaling: [`crate::io::Model`] applies
//! `(x − center) / scale`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::csv::is_missing;
use crate::data::idx;
use crate::data::preprocess::{ColumnEncoding, Preprocess};
use crate::error::{Message, NablaError, Setting};
use crate::task::Task;

/// Targets read alongside the rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class index per row (into the model's classes).
    Classes(Vec<u32>),
    /// Value per row, in the file's units.
    Values(Vec<f64>),
}

/// Encoded rows ready for [`crate::io::Model::predict_batch`].
#[derive(Clone, Debug)]
pub struct Rows {
    /// `rows × features` values, row-major, in the model's feature order.
    pub values: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// The targets, when the file has the target column (or IDX labels).
    pub targets: Option<Targets>,
}

/// Reads `path` for a model with `preprocess`: a CSV file (plain or `.gz`), an IDX images file,
/// or a folder of IDX files (its `t10k` pair; for an image model only).
pub fn read(path: &Path, preprocess: &Preprocess) -> Result<Rows, NablaError> {
    if path.is_dir() {
        return read_idx_dir(path, preprocess);
    }
    let mut file = std::fs::File::open(path).map_err(|e| NablaError::io(path, e))?;
    let mut head = [0u8; 4];
    let got = file.read(&mut head).map_err(|e| NablaError::io(path, e))?;
    // IDX magic: 0, 0, type 0x08 (unsigned byte), dimensions.
    if got == 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08 {
        let images = idx::read(path, 3)?;
        return from_images(path, images, None, preprocess);
    }
    let bytes = std::fs::read(path).map_err(|e| NablaError::io(path, e))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| NablaError::io(path, e))?;
        if out.len() >= 4 && out[0] == 0 && out[1] == 0 && out[2] == 0x08 {
            let images = idx::read(path, 3)?;
            return from_images(path, images, None, preprocess);
        }
        out
    } else {
        bytes
    };
    read_csv_bytes(path, &bytes, preprocess)
}

fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf, NablaError> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(NablaError::data(
        dir,
        "folder",
        format!("no {stem} (or {stem}.gz) in this folder"),
    ))
}

fn read_idx_dir(dir: &Path, preprocess: &Preprocess) -> Result<Rows, NablaError> {
    let images = idx::read(&find_idx(dir, "t10k-images-idx3-ubyte")?, 3)?;
    let labels = match find_idx(dir, "t10k-labels-idx1-ubyte") {
        Ok(p) => Some((idx::read(&p, 1)?, p)),
        Err(_) => None,
    };
    from_images(dir, images, labels, preprocess)
}

fn from_images(
    path: &Path,
    images: idx::IdxArray,
    labels: Option<(idx::IdxArray, PathBuf)>,
    preprocess: &Preprocess,
) -> Result<Rows, NablaError> {
    let n = images.dims.first().copied().unwrap_or(0);
    let pixels = images.dims.iter().skip(1).product::<usize>();
    if pixels != preprocess.inputs() {
        return Err(NablaError::data(
            path,
            "header",
            format!(
                "images of {pixels} pixels, but the model takes {} inputs",
                preprocess.inputs()
            ),
        ));
    }
    let targets = match labels {
        Some((l, lpath)) => {
            if l.data.len() != n {
                return Err(NablaError::data(
                    &lpath,
                    "header",
                    format!("{} labels for {n} images", l.data.len()),
                ));
            }
            let classes = preprocess.target.classes.len();
            if let Some(bad) = l.data.iter().find(|&&v| v as usize >= classes) {
                return Err(NablaError::data(
                    &lpath,
                    "labels",
                    format!("label {bad}, but the model has {classes} classes"),
                ));
            }
            Some(Targets::Classes(l.data.iter().map(|&v| v as u32).collect()))
        }
        None => None,
    };
    Ok(Rows {
        values: images.data.iter().map(|&v| f32::from(v)).collect(),
        rows: n,
        targets,
    })
}

/// Reads CSV bytes (see [`read`]); `path` names the file in errors.
pub fn read_csv_bytes(
    path: &Path,
    bytes: &[u8],
    preprocess: &Preprocess,
) -> Result<Rows, NablaError> {
    let head_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let delimiter = crate::data::csv::detect_delimiter(&bytes[..head_end]);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| NablaError::data(path, "header", e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let position = |name: &str| header.iter().position(|h| h == name);
    let mut missing = Vec::new();
    let mut wanted = Vec::with_capacity(preprocess.columns.len());
    for c in &preprocess.columns {
        let name = match c {
            ColumnEncoding::Numeric { name, .. } | ColumnEncoding::Categorical { name, .. } => name,
        };
        match position(name) {
            Some(i) => wanted.push(i),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(|m| format!("{m:?}")).collect();
        return Err(NablaError::data(
            path,
            "header",
            format!(
                "{} column(s) the model needs are missing: {}{}",
                missing.len(),
                shown.join(", "),
                if missing.len() > 20 { ", ..." } else { "" }
            ),
        ));
    }
    let target = &preprocess.target;
    let target_at = position(&target.name);
    let width = preprocess.inputs();
    let mut values = Vec::new();
    let mut classes = Vec::new();
    let mut reals = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut rows = 0usize;
    loop {
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| NablaError::data(path, csv_location(&e), e.to_string()))?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell_text = |i: usize| {
            String::from_utf8_lossy(record.get(i).unwrap_or(b"").trim_ascii()).into_owned()
        };
        let at = |name: &str| format!("line {line}, column {name:?}");
        let missing = |name: &str| {
            NablaError::data_with(
                path,
                at(name),
                Message::new()
                    .text("missing value (the model was trained without ")
                    .setting(Setting::Impute)
                    .text(")"),
            )
        };
        let start = values.len();
        for (c, &i) in preprocess.columns.iter().zip(&wanted) {
            let raw = record.get(i).unwrap_or(b"").trim_ascii();
            match c {
                ColumnEncoding::Numeric { name, impute } => {
                    let v = if is_missing(raw) {
                        impute.ok_or_else(|| missing(name))?
                    } else {
                        let text = cell_text(i);
                        text.parse::<f64>().map_err(|_| {
                            NablaError::data(path, at(name), format!("{text:?} is not a number"))
                        })?
                    };
                    values.push(v as f32);
                }
                ColumnEncoding::Categorical {
                    name,
                    categories,
                    impute,
                } => {
                    let text = if is_missing(raw) {
                        impute.clone().ok_or_else(|| missing(name))?
                    } else {
                        cell_text(i)
                    };
                    // An unseen category encodes as all zeros, as in training.
                    values.extend(categories.iter().map(|c| f32::from(u8::from(*c == text))));
                }
            }
        }
        if values.len() - start != width {
            return Err(NablaError::data(
                path,
                format!("line {line}"),
                format!(
                    "the row encodes to {} inputs, the model takes {width}",
                    values.len() - start
                ),
            ));
        }
        if let Some(t) = target_at {
            let text = cell_text(t);
            match target.task {
                Task::Classification => {
                    let found = target.classes.iter().position(|c| *c == text).or_else(|| {
                        let v: f64 = text.parse().ok()?;
                        target
                            .classes
                            .iter()
                            .position(|c| c.parse::<f64>().ok() == Some(v))
                    });
                    let k = found.ok_or_else(|| {
                        NablaError::data(
                            path,
                            at(&target.name),
                            format!("{text:?} is not one of the model's classes"),
                        )
                    })?;
                    classes.push(k as u32);
                }
                Task::Regression => {
                    let v: f64 = text.parse().map_err(|_| {
                        NablaError::data(
                            path,
                            at(&target.name),
                            format!("{text:?} is not a number"),
                        )
                    })?;
                    reals.push(v);
                }
            }
        }
        rows += 1;
    }
    let targets = target_at.map(|_| match target.task {
        Task::Classification => Targets::Classes(classes),
        Task::Regression => Targets::Values(reals),
    });
    Ok(Rows {
        values,
        rows,
        targets,
    })
}

fn csv_location(e: &csv::Error) -> String {
    e.position()
        .map_or_else(|| "file".to_string(), |p| format!("line {}", p.line()))
}
