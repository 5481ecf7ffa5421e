//! New rows for a saved model: reads a CSV file (columns matched by name to the model's
//! [`Preprocess`]) or IDX images into encoded rows in the model's feature order, plus the
//! targets when the file has the target column. It does no scaling: [`crate::io::Model`] applies
//! `(x − center) / scale`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::csv::is_missing;
use crate::data::idx;
use crate::data::preprocess::{ColumnEncoding, Preprocess, TargetEncoding};
use crate::error::{Message, NablaError, Setting, cut_name};
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
    /// Warnings for the user (one per categorical column holding a category never seen in
    /// training: such a value encodes as all zeros, and the row is still predicted).
    pub warnings: Vec<String>,
}

/// The rows of one categorical column whose value was never seen in training.
#[derive(Default)]
struct Unseen {
    /// The first such value.
    first: Option<String>,
    /// How many rows hold such a value.
    rows: usize,
}

/// One warning per categorical column with unseen values: its name, the first value (cut to
/// 80 characters) and the number of rows.
fn unseen_warnings(preprocess: &Preprocess, unseen: &[Unseen]) -> Vec<String> {
    preprocess
        .columns
        .iter()
        .zip(unseen)
        .filter(|(_, u)| u.rows > 0)
        .map(|(c, u)| {
            let name = match c {
                ColumnEncoding::Numeric { name, .. } | ColumnEncoding::Categorical { name, .. } => {
                    name
                }
            };
            format!(
                "column {:?}: {} row{} hold{} a category never seen in training (e.g. {:?}); encoded as no category (all zeros)",
                cut_name(name),
                u.rows,
                if u.rows == 1 { "" } else { "s" },
                if u.rows == 1 { "s" } else { "" },
                cut_name(u.first.as_deref().unwrap_or("")),
            )
        })
        .collect()
}

/// Reads `path` for a model with `preprocess`: a CSV file (plain or `.gz`), an IDX images file,
/// or a folder of IDX files (its `t10k` pair; for an image model only).
pub fn read(path: &Path, preprocess: &Preprocess) -> Result<Rows, NablaError> {
    read_with(path, preprocess, true)
}

/// [`read`] for prediction: a target column is ignored (never read, so a value that is not one
/// of the model's classes is no error); [`Rows::targets`] is `None` for CSV files.
pub fn read_inputs(path: &Path, preprocess: &Preprocess) -> Result<Rows, NablaError> {
    read_with(path, preprocess, false)
}

/// [`read`], reading the target column of a CSV file only when `targets`.
fn read_with(path: &Path, preprocess: &Preprocess, targets: bool) -> Result<Rows, NablaError> {
    if path.is_dir() {
        return read_idx_dir(path, preprocess);
    }
    let (file, size) = crate::io::source::open(path)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| NablaError::io(path, e))?;
    // IDX magic: 0, 0, type 0x08 (unsigned byte), dimensions.
    let is_idx = |b: &[u8]| b.len() >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0x08;
    if is_idx(&bytes) {
        let images = idx::read(path, 3)?;
        return from_images(path, images, None, preprocess);
    }
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        // Bounded like training data: a decompression bomb is refused, whatever the command.
        let out = crate::io::source::gunzip(path, &bytes)?;
        if is_idx(&out) {
            let images = idx::read(path, 3)?;
            return from_images(path, images, None, preprocess);
        }
        out
    } else {
        bytes
    };
    read_csv(path, &bytes, preprocess, targets)
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
        warnings: Vec::new(),
    })
}

/// Reads CSV bytes (see [`read`]); `path` names the file in errors.
pub fn read_csv_bytes(
    path: &Path,
    bytes: &[u8],
    preprocess: &Preprocess,
) -> Result<Rows, NablaError> {
    read_csv(path, bytes, preprocess, true)
}

/// Refuses a header naming one column twice, as training does.
fn unique_header(path: &Path, header: &[String]) -> Result<(), NablaError> {
    let mut seen = std::collections::HashMap::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        if let Some(first) = seen.insert(h.as_str(), i) {
            let shown: String = h.chars().take(80).collect();
            return Err(NablaError::data(
                path,
                "header",
                format!(
                    "the column name {shown:?} appears twice (columns {} and {}); column names must be unique",
                    first + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// [`read_csv_bytes`], reading the target column only when `targets`.
fn read_csv(
    path: &Path,
    bytes: &[u8],
    preprocess: &Preprocess,
    targets: bool,
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
    unique_header(path, &header)?;
    let wanted = wanted_columns(path, &header, preprocess)?;
    let target = &preprocess.target;
    let target_at = header
        .iter()
        .position(|h| *h == target.name)
        .filter(|_| targets);
    let mut targets = target_at.map(|_| match target.task {
        Task::Classification => Targets::Classes(Vec::new()),
        Task::Regression => Targets::Values(Vec::new()),
    });
    let mut values = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut rows = 0usize;
    let mut unseen: Vec<Unseen> = preprocess
        .columns
        .iter()
        .map(|_| Unseen::default())
        .collect();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| NablaError::data(path, csv_location(&e), e.to_string()))?
    {
        let row = Row {
            path,
            line: record.position().map_or(0, |p| p.line()),
            record: &record,
        };
        encode_row(&row, preprocess, &wanted, &mut values, &mut unseen)?;
        if let (Some(t), Some(targets)) = (target_at, targets.as_mut()) {
            push_target(&row, t, target, targets)?;
        }
        rows += 1;
    }
    Ok(Rows {
        values,
        rows,
        targets,
        warnings: unseen_warnings(preprocess, &unseen),
    })
}

/// The header position of each column the model reads, in the model's order; an error names
/// every missing column (up to 20).
fn wanted_columns(
    path: &Path,
    header: &[String],
    preprocess: &Preprocess,
) -> Result<Vec<usize>, NablaError> {
    let mut missing = Vec::new();
    let mut wanted = Vec::with_capacity(preprocess.columns.len());
    for c in &preprocess.columns {
        let name = match c {
            ColumnEncoding::Numeric { name, .. } | ColumnEncoding::Categorical { name, .. } => name,
        };
        match header.iter().position(|h| h == name) {
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
    Ok(wanted)
}

/// A data record being read, for its cells and for messages.
struct Row<'a> {
    path: &'a Path,
    line: u64,
    record: &'a csv::ByteRecord,
}

impl Row<'_> {
    /// Field `i`, trimmed (empty if the record is short).
    fn raw(&self, i: usize) -> &[u8] {
        self.record.get(i).unwrap_or(b"").trim_ascii()
    }

    /// Field `i` as text, trimmed.
    fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(self.raw(i)).into_owned()
    }

    /// An error about column `name` on this record's line.
    fn error(&self, name: &str, message: impl Into<Message>) -> NablaError {
        NablaError::data_with(
            self.path,
            format!("line {}, column {name:?}", self.line),
            message.into(),
        )
    }

    /// A missing cell in column `name` that the model has no imputed value for.
    fn missing(&self, name: &str) -> NablaError {
        self.error(
            name,
            Message::new()
                .text("missing value (the model was trained without ")
                .setting(Setting::Impute)
                .text(")"),
        )
    }
}

/// Appends a record's inputs, encoded in the model's feature order, to `values`; a category
/// never seen in training is counted in its column's `unseen`.
fn encode_row(
    row: &Row,
    preprocess: &Preprocess,
    wanted: &[usize],
    values: &mut Vec<f32>,
    unseen: &mut [Unseen],
) -> Result<(), NablaError> {
    let start = values.len();
    for ((c, &i), unseen) in preprocess.columns.iter().zip(wanted).zip(unseen) {
        let raw = row.raw(i);
        match c {
            ColumnEncoding::Numeric { name, impute } => {
                let v = if is_missing(raw) {
                    impute.ok_or_else(|| row.missing(name))?
                } else {
                    crate::data::csv::number(raw).map_err(|m| row.error(name, m))?
                };
                values.push(v as f32);
            }
            ColumnEncoding::Categorical {
                name,
                categories,
                impute,
            } => {
                let text = if is_missing(raw) {
                    impute.clone().ok_or_else(|| row.missing(name))?
                } else {
                    row.text(i)
                };
                // An unseen category encodes as all zeros, as in training.
                let before = values.len();
                values.extend(categories.iter().map(|c| f32::from(u8::from(*c == text))));
                if !values[before..].contains(&1.0) {
                    unseen.rows += 1;
                    unseen.first.get_or_insert(text);
                }
            }
        }
    }
    let width = preprocess.inputs();
    if values.len() - start != width {
        return Err(NablaError::data(
            row.path,
            format!("line {}", row.line),
            format!(
                "the row encodes to {} inputs, the model takes {width}",
                values.len() - start
            ),
        ));
    }
    Ok(())
}

/// Appends field `t`, the target, to `targets`: a class index into the model's classes (by
/// name, or by numeric value: `1.0` is class `"1"`), or a value.
fn push_target(
    row: &Row,
    t: usize,
    target: &TargetEncoding,
    targets: &mut Targets,
) -> Result<(), NablaError> {
    let text = row.text(t);
    match targets {
        Targets::Classes(classes) => {
            let found = target.classes.iter().position(|c| *c == text).or_else(|| {
                let v: f64 = text.parse().ok()?;
                target
                    .classes
                    .iter()
                    .position(|c| c.parse::<f64>().ok() == Some(v))
            });
            let k = found.ok_or_else(|| {
                row.error(
                    &target.name,
                    format!("{:?} is not one of the model's classes", cut_name(&text)),
                )
            })?;
            classes.push(k as u32);
        }
        Targets::Values(values) => {
            let v = crate::data::csv::number(row.raw(t)).map_err(|m| row.error(&target.name, m))?;
            values.push(v);
        }
    }
    Ok(())
}

fn csv_location(e: &csv::Error) -> String {
    e.position()
        .map_or_else(|| "file".to_string(), |p| format!("line {}", p.line()))
}
