//! CSV files in: one streaming pass from bytes to a [`RawTable`] of `f32` cells.
//!
//! What this module owns: the byte-level reading of a delimited text file (plain or gzip), the
//! header, column selection (the `target`, `features` and `drop` settings), delimiter detection, and the
//! classification of every cell as a number, a category, or missing. What it must not do: decide
//! the task, split, impute or scale — that is [`crate::data::table`], which sees the whole table.
//!
//! Records are parsed one at a time by the `csv` crate straight into a row-major `Vec<f32>`, so
//! the text and the parsed table never sit in memory together: peak memory is about
//! `rows × columns × 4` bytes plus the target column and a constant.
//!
//! Rules, in the order a cell meets them:
//! - Surrounding spaces are trimmed. An empty cell, `NA`, `N/A`, `NaN` or `null` (any case) is
//!   missing; missing cells are counted and stored as `NaN`.
//! - A column is *numeric* if its first non-missing cell parses as a number, *categorical*
//!   (text) otherwise. A later cell that is not a number in a numeric column is an error, as is
//!   `±inf` or a magnitude beyond `f32::MAX` (3.4e38): nabla computes in `f32` and refuses
//!   values it cannot hold rather than turning them into infinities.
//! - Categorical cells are stored as the index of their text in the column's category list
//!   (first-appearance order); at most [`MAX_CATEGORIES`] distinct texts per column.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{Message, NablaError, Setting};

/// The most distinct texts a categorical feature column may have before one-hot encoding it is
/// refused as too wide.
pub const MAX_CATEGORIES: usize = 1000;

/// Which columns to read and how to split fields.
#[derive(Clone, Debug, Default)]
pub struct CsvOptions {
    /// The target column's name; `None`: the last column.
    pub target: Option<String>,
    /// Read only these feature columns (in this order); `None`: every column but the target and
    /// those in `drop`.
    pub features: Option<Vec<String>>,
    /// Columns to ignore.
    pub drop: Vec<String>,
    /// The field delimiter; `None`: detected from the header (comma, semicolon or tab).
    pub delimiter: Option<u8>,
    /// Columns to read as text whatever their first cell looks like (a test file read with
    /// the training file's column kinds).
    pub text_columns: Vec<String>,
    /// Columns that must hold numbers.
    pub numeric_columns: Vec<String>,
    /// The training file whose columns this (test) file must have, for messages.
    pub columns_of: Option<PathBuf>,
}

/// What a column holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Numbers, stored as themselves.
    Numeric,
    /// Text, stored as an index into the category list.
    Categorical(Vec<String>),
}

/// One selected column of a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The header name.
    pub name: String,
    /// Numbers or categories (decided by the first non-missing cell).
    pub kind: ColumnKind,
    /// Missing cells in this column.
    pub missing: usize,
}

/// The target column as read.
#[derive(Clone, Debug, PartialEq)]
pub enum RawTarget {
    /// Numbers (`NaN` where missing).
    Numeric(Vec<f64>),
    /// Text: an index into `names` per row ([`MISSING_CODE`] where missing).
    Text {
        /// Category index of every row.
        codes: Vec<u32>,
        /// Distinct texts in first-appearance order.
        names: Vec<String>,
    },
}

/// Code of a missing text target.
pub const MISSING_CODE: u32 = u32::MAX;

impl RawTarget {
    /// True if row `i` has no target value.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            RawTarget::Numeric(v) => v[i].is_nan(),
            RawTarget::Text { codes, .. } => codes[i] == MISSING_CODE,
        }
    }
}

/// Where the first missing cell was seen, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingAt {
    /// The record's line in the file (from 1).
    pub line: u64,
    /// The column's name.
    pub column: String,
    /// The cell's text.
    pub text: String,
}

/// A CSV file read into memory: feature cells row-major as `f32`, plus the target.
#[derive(Clone, Debug)]
pub struct RawTable {
    /// The file (for messages).
    pub path: PathBuf,
    /// The selected feature columns, in input order.
    pub columns: Vec<Column>,
    /// `rows × columns.len()` cells, row-major: a number, a category index, or `NaN` (missing).
    pub values: Vec<f32>,
    /// The target column's name.
    pub target_name: String,
    /// The target of every row.
    pub target: RawTarget,
    /// Missing target cells.
    pub target_missing: usize,
    /// The first missing cell anywhere (feature or target), if any.
    pub first_missing: Option<MissingAt>,
    /// The delimiter used.
    pub delimiter: u8,
}

impl RawTable {
    /// Number of data rows.
    pub fn rows(&self) -> usize {
        match &self.target {
            RawTarget::Numeric(v) => v.len(),
            RawTarget::Text { codes, .. } => codes.len(),
        }
    }

    /// Total missing cells (features and target).
    pub fn missing(&self) -> usize {
        self.columns.iter().map(|c| c.missing).sum::<usize>() + self.target_missing
    }
}

/// Reads a CSV file (gzip-compressed if it starts with the gzip magic bytes, whatever its name).
pub fn read(path: &Path, options: &CsvOptions) -> Result<RawTable, NablaError> {
    let (file, size) = crate::io::source::open(path)?;
    read_from(path, file, size, options)
}

/// Reads CSV bytes already in memory; `name` is used in messages. The fuzz targets and the
/// built-in dataset come in here.
pub fn read_bytes(name: &Path, bytes: &[u8], options: &CsvOptions) -> Result<RawTable, NablaError> {
    read_from(name, bytes, bytes.len() as u64, options)
}

/// The longest line read: real rows are kilobytes (a 300,000-column header is 2.3 MB); a longer
/// "line" is a file that is not CSV (a sparse file, a binary), refused before it fills memory.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// A gzip file may decompress to at most this many times its size (or 64 MiB, if more):
/// CSV text compresses about 3-10×; a stream far beyond that is a decompression bomb.
pub const MAX_GZIP_RATIO: u64 = 200;

/// Why reading stopped at a limit.
#[derive(Debug)]
struct Limit(String);

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Limit {}

/// Passes bytes through, failing past [`MAX_LINE_BYTES`] without a line break or past `total`
/// bytes in all.
struct Limited<R> {
    inner: R,
    line: u64,
    read: u64,
    total: u64,
    total_name: &'static str,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.total {
            return Err(std::io::Error::other(Limit(format!(
                "more than {} bytes {} (MAX_GZIP_RATIO: {MAX_GZIP_RATIO}× the file, at least 64 MiB); refusing a decompression bomb",
                self.total, self.total_name
            ))));
        }
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => self.line = (n - 1 - i) as u64,
            None => self.line += n as u64,
        }
        if self.line > MAX_LINE_BYTES {
            return Err(std::io::Error::other(Limit(format!(
                "a line longer than {MAX_LINE_BYTES} bytes (MAX_LINE_BYTES); not a CSV file?"
            ))));
        }
        Ok(n)
    }
}

fn limited<R: Read>(inner: R, total: u64, total_name: &'static str) -> Limited<R> {
    Limited {
        inner,
        line: 0,
        read: 0,
        total,
        total_name,
    }
}

/// How much of the file is looked at to detect gzip and the delimiter.
const PEEK: usize = 64 * 1024;

fn read_from(
    path: &Path,
    r: impl Read,
    size: u64,
    options: &CsvOptions,
) -> Result<RawTable, NablaError> {
    let mut r = limited(r, u64::MAX, "read");
    let mut head = Vec::with_capacity(PEEK);
    (&mut r)
        .take(PEEK as u64)
        .read_to_end(&mut head)
        .map_err(|e| NablaError::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = MultiGzDecoder::new(Cursor::new(head).chain(r.inner));
        let total = size.saturating_mul(MAX_GZIP_RATIO).max(64 << 20);
        let mut r = limited(gz, total, "decompressed");
        let mut head = Vec::with_capacity(PEEK);
        if let Err(e) = (&mut r).take(PEEK as u64).read_to_end(&mut head) {
            let line = head.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(read_error(path, line, e));
        }
        parse(path, head, r, options)
    } else {
        parse(path, head, r, options)
    }
}

fn read_error(path: &Path, line: usize, e: std::io::Error) -> NablaError {
    if let Some(limit) = e.get_ref().and_then(|i| i.downcast_ref::<Limit>()) {
        return NablaError::data(path, format!("line {line}"), limit.to_string());
    }
    NablaError::data(
        path,
        format!("line {line}"),
        format!("cannot read: {e} (a truncated or corrupt gzip file?)"),
    )
}

/// Counts each candidate delimiter outside quotes on the first line and picks the most
/// frequent (comma on a tie or when none appears).
pub fn detect_delimiter(head: &[u8]) -> u8 {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

/// A printable name for a delimiter.
pub fn delimiter_name(d: u8) -> String {
    match d {
        b',' => "comma".into(),
        b';' => "semicolon".into(),
        b'\t' => "tab".into(),
        b' ' => "space".into(),
        other => format!("{:?}", other as char),
    }
}

/// True for the texts that mean "no value".
pub fn is_missing(cell: &[u8]) -> bool {
    cell.is_empty()
        || cell.eq_ignore_ascii_case(b"na")
        || cell.eq_ignore_ascii_case(b"n/a")
        || cell.eq_ignore_ascii_case(b"nan")
        || cell.eq_ignore_ascii_case(b"null")
}

/// A cell's text for messages: valid UTF-8 shown as is (shortened), anything else as bytes.
fn show(cell: &[u8]) -> String {
    let text = String::from_utf8_lossy(cell);
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    format!("{s:?}")
}

/// What a numeric cell turned out to be.
enum Number {
    Value(f64),
    Text,
    Infinite,
    TooLarge,
}

fn parse_number(cell: &[u8]) -> Number {
    // Fast path for plain decimals is the standard library's parser (correctly rounded).
    let Ok(text) = std::str::from_utf8(cell) else {
        return Number::Text;
    };
    // Rust accepts "inf", "infinity" and "nan"; only the infinities reach here (NaN is missing).
    match text.parse::<f64>() {
        Ok(v) if v.is_infinite() => {
            let lower = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
            if lower.starts_with("inf") {
                Number::Infinite
            } else {
                Number::TooLarge
            }
        }
        Ok(v) if v.abs() > f32::MAX as f64 => Number::TooLarge,
        Ok(v) => Number::Value(v),
        Err(_) => Number::Text,
    }
}

/// `-12,5`: digits, one comma, digits (a number written with a decimal comma).
fn looks_like_decimal_comma(cell: &[u8]) -> bool {
    let body = cell.strip_prefix(b"-").unwrap_or(cell);
    let mut parts = body.split(|&b| b == b',');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => {
            !a.is_empty()
                && !b.is_empty()
                && a.iter().all(u8::is_ascii_digit)
                && b.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn trim(cell: &[u8]) -> &[u8] {
    cell.trim_ascii()
}

/// A column being filled.
struct Builder {
    name: String,
    kind: Option<bool>, // Some(true) numeric, Some(false) categorical, None: only missing so far
    lookup: HashMap<Vec<u8>, u32>,
    names: Vec<String>,
    missing: usize,
    is_target: bool,
}

impl Builder {
    fn new(name: String, is_target: bool, options: &CsvOptions) -> Self {
        let kind = if options.text_columns.contains(&name) {
            Some(false)
        } else if options.numeric_columns.contains(&name) {
            Some(true)
        } else {
            None
        };
        Self {
            name,
            kind,
            lookup: HashMap::new(),
            names: Vec::new(),
            missing: 0,
            is_target,
        }
    }

    /// Returns the cell's value: a number, a category code, or NaN for missing.
    fn cell(&mut self, path: &Path, line: u64, raw: &[u8]) -> Result<Cell, NablaError> {
        let cell = trim(raw);
        if is_missing(cell) {
            self.missing += 1;
            return Ok(Cell::Missing);
        }
        if self.kind.is_none() {
            let kind = first_kind(cell).map_err(|m| self.error(path, line, m))?;
            self.kind = Some(kind);
        }
        if self.kind == Some(true) {
            number(cell)
                .map(Cell::Number)
                .map_err(|m| self.error(path, line, m))
        } else {
            self.category(cell)
                .map(Cell::Code)
                .map_err(|m| self.error(path, line, m))
        }
    }

    /// A text cell's category code; a text not seen before becomes the next category.
    fn category(&mut self, cell: &[u8]) -> Result<u32, Message> {
        if let Some(&code) = self.lookup.get(cell) {
            return Ok(code);
        }
        let text = std::str::from_utf8(cell).map_err(|e| {
            Message::from(format!(
                "found invalid UTF-8 (byte 0x{:02x} at offset {}), expected text",
                cell[e.valid_up_to()],
                e.valid_up_to()
            ))
        })?;
        if !self.is_target && self.names.len() >= MAX_CATEGORIES {
            return Err(Message::new()
                .text(format!(
                    "more than {MAX_CATEGORIES} distinct texts in a feature column (one-hot encoding would be too wide); leave it out with "
                ))
                .value(Setting::Drop, format!("{:?}", self.name)));
        }
        let code = self.names.len() as u32;
        self.names.push(text.to_string());
        self.lookup.insert(cell.to_vec(), code);
        Ok(code)
    }

    /// An error about this column's cell on `line`.
    fn error(&self, path: &Path, line: u64, message: Message) -> NablaError {
        NablaError::data_with(
            path,
            format!("line {line}, column {:?}", self.name),
            message,
        )
    }
}

/// The kind a column's first non-missing cell gives it: numeric (`true`) or text. A number
/// with a decimal comma is refused rather than taken for text.
fn first_kind(cell: &[u8]) -> Result<bool, Message> {
    let numeric = !matches!(parse_number(cell), Number::Text);
    if !numeric && looks_like_decimal_comma(cell) {
        return Err(format!(
            "found {}, a number with a decimal comma? nabla expects a decimal point",
            show(cell)
        )
        .into());
    }
    Ok(numeric)
}

/// A numeric column's cell: a finite number within `f32`'s range (the one rule for values,
/// used for training data and for new rows alike).
pub(crate) fn number(cell: &[u8]) -> Result<f64, Message> {
    let problem = match parse_number(cell) {
        Number::Value(v) => return Ok(v),
        Number::Infinite => "expected a finite number",
        Number::TooLarge => "beyond the ±3.4e38 (f32) range nabla computes in; rescale this column",
        Number::Text if std::str::from_utf8(cell).is_err() => {
            "expected a number like the column's earlier cells (the bytes are not valid UTF-8)"
        }
        Number::Text if cell.contains(&b',') => {
            "expected a number like the column's earlier cells (a decimal comma? nabla expects a decimal point)"
        }
        Number::Text => "expected a number like the column's earlier cells",
    };
    Err(format!("found {}, {problem}", show(cell)).into())
}

enum Cell {
    Number(f64),
    Code(u32),
    Missing,
}

fn parse(
    path: &Path,
    head: Vec<u8>,
    rest: impl Read,
    options: &CsvOptions,
) -> Result<RawTable, NablaError> {
    if head.is_empty() || head == b"\xef\xbb\xbf" {
        return Err(NablaError::data(
            path,
            "line 1",
            "empty file, expected a header row of column names",
        ));
    }
    let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(&head));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 16)
        .from_reader(Cursor::new(head).chain(rest));
    let mut record = csv::ByteRecord::new();
    let header = read_header(path, &mut reader, &mut record, delimiter)?;
    let selection = select(path, &header, options)?;
    let mut table = Filling::new(&header.names, selection, options);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => table.push(path, &record)?,
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e, reader.position().line())),
        }
    }
    table.finish(path, header.line, delimiter)
}

/// A read error (a corrupt gzip stream) or a CSV syntax error, naming the line being read
/// when it struck.
fn csv_error(path: &Path, e: csv::Error, line: u64) -> NablaError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => read_error(path, line as usize, io),
        other => NablaError::data(path, format!("line {line}"), format!("{other:?}")),
    }
}

/// The header row: the column names and the line they are on.
struct Header {
    names: Vec<String>,
    line: u64,
}

/// Reads the header row: valid UTF-8, non-empty unique names, at least two of them.
fn read_header(
    path: &Path,
    reader: &mut csv::Reader<impl Read>,
    record: &mut csv::ByteRecord,
    delimiter: u8,
) -> Result<Header, NablaError> {
    if !reader
        .read_byte_record(record)
        .map_err(|e| csv_error(path, e, 1))?
    {
        return Err(NablaError::data(
            path,
            "line 1",
            "no header row (only blank lines), expected column names",
        ));
    }
    let line = record.position().map_or(1, |p| p.line());
    let mut names = Vec::with_capacity(record.len());
    let mut seen = std::collections::HashMap::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let name = header_name(raw, &mut seen, i)
            .map_err(|m| NablaError::data(path, format!("line {line}, column {}", i + 1), m))?;
        names.push(name);
    }
    if names.len() < 2 {
        return Err(NablaError::data_with(
            path,
            format!("line {line}"),
            Message::new()
                .text(format!(
                    "the header has 1 column ({}) when split at {}s, expected a target and at least one feature; set ",
                    show(record.get(0).unwrap_or_default()),
                    delimiter_name(delimiter)
                ))
                .setting(Setting::Delimiter)
                .text(" if the file uses another separator"),
        ));
    }
    Ok(Header { names, line })
}

/// One header cell (column `i`) as a column name, checked against the names before it
/// (`seen`: name → column index, so the check is linear in the header's length).
fn header_name(
    raw: &[u8],
    seen: &mut std::collections::HashMap<String, usize>,
    i: usize,
) -> Result<String, String> {
    let name = std::str::from_utf8(trim(raw)).map_err(|_| {
        format!(
            "header name {} is not valid UTF-8; expected a text header row (is this a CSV file?)",
            show(raw)
        )
    })?;
    if name.is_empty() {
        return Err("empty header name, expected a column name".to_string());
    }
    if let Some(j) = seen.get(name) {
        return Err(format!(
            "duplicate header name {name:?} (also column {}), expected unique names",
            j + 1
        ));
    }
    seen.insert(name.to_string(), i);
    Ok(name.to_string())
}

/// Which columns are read: the target's index and the features' indices, in reading order.
struct Selection {
    target: usize,
    features: Vec<usize>,
}

/// Resolves [`CsvOptions::target`], [`CsvOptions::features`] and [`CsvOptions::drop`] against
/// the header.
fn select(path: &Path, header: &Header, options: &CsvOptions) -> Result<Selection, NablaError> {
    let names = &header.names;
    let find = |name: &str, setting| find_column(path, header, options, name, setting);
    let target = match &options.target {
        Some(t) => find(t, Setting::Target)?,
        None => names.len() - 1,
    };
    for d in &options.drop {
        find(d, Setting::Drop)?;
        if names[target] == *d {
            return Err(NablaError::Settings(
                Message::new()
                    .value(Setting::Drop, format!("{d:?}"))
                    .text(" names the target column"),
            ));
        }
    }
    let features = match &options.features {
        Some(list) => {
            let mut out = Vec::new();
            for f in list {
                let i = find(f, Setting::Features)?;
                if i == target {
                    return Err(NablaError::Settings(
                        Message::new()
                            .value(Setting::Features, format!("{f:?}"))
                            .text(" names the target column"),
                    ));
                }
                if out.contains(&i) {
                    return Err(NablaError::Settings(
                        Message::new()
                            .setting(Setting::Features)
                            .text(format!(" lists {f:?} twice")),
                    ));
                }
                out.push(i);
            }
            out
        }
        None => (0..names.len())
            .filter(|&i| i != target && !options.drop.contains(&names[i]))
            .collect(),
    };
    if features.is_empty() {
        return Err(NablaError::Usage(format!(
            "{}: no feature columns left (target {:?})",
            path.display(),
            names[target]
        )));
    }
    Ok(Selection { target, features })
}

/// The index of column `name`, which `setting` named. Not found: a usage error, or, when this
/// file must have another file's columns ([`CsvOptions::columns_of`]), a data error.
fn find_column(
    path: &Path,
    header: &Header,
    options: &CsvOptions,
    name: &str,
    setting: Setting,
) -> Result<usize, NablaError> {
    let names = &header.names;
    names
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| match &options.columns_of {
            Some(train) => NablaError::data(
                path,
                format!("line {}", header.line),
                format!(
                    "no column {name:?}, expected the columns of {} (the header has {})",
                    train.display(),
                    list(names)
                ),
            ),
            None => NablaError::Settings(
                Message::new()
                    .text(format!("{}: ", path.display()))
                    .value(setting, format!("{name:?}"))
                    .text(format!(": no such column; the header has {}", list(names))),
            ),
        })
}

/// The table being filled, one record at a time.
struct Filling {
    selection: Selection,
    /// Fields per record (the header's).
    width: usize,
    columns: Vec<Builder>,
    target: Builder,
    /// Feature cells, row-major.
    values: Vec<f32>,
    /// The target while it looks numeric (only missing cells so far count as numeric).
    numeric_target: Vec<f64>,
    /// The target once it holds text.
    codes: Vec<u32>,
    first_missing: Option<MissingAt>,
    rows: usize,
}

impl Filling {
    fn new(names: &[String], selection: Selection, options: &CsvOptions) -> Self {
        Filling {
            width: names.len(),
            columns: selection
                .features
                .iter()
                .map(|&i| Builder::new(names[i].clone(), false, options))
                .collect(),
            target: Builder::new(names[selection.target].clone(), true, options),
            selection,
            values: Vec::new(),
            numeric_target: Vec::new(),
            codes: Vec::new(),
            first_missing: None,
            rows: 0,
        }
    }

    /// Adds one data record: its feature cells, then its target.
    fn push(&mut self, path: &Path, record: &csv::ByteRecord) -> Result<(), NablaError> {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != self.width {
            // A trailing delimiter at the end of every line is common; so is a stray blank
            // field. Neither is guessed at: the row must match the header.
            return Err(NablaError::data(
                path,
                format!("line {line}"),
                format!(
                    "{} field{}, expected {} like the header (a ragged row, or a delimiter inside an unquoted field?)",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    self.width
                ),
            ));
        }
        for (c, &i) in self.selection.features.iter().enumerate() {
            let raw = &record[i];
            let v = match self.columns[c].cell(path, line, raw)? {
                Cell::Number(v) => v as f32,
                Cell::Code(code) => code as f32,
                Cell::Missing => {
                    note_missing(&mut self.first_missing, line, &self.columns[c].name, raw);
                    f32::NAN
                }
            };
            self.values.push(v);
        }
        self.push_target(path, line, &record[self.selection.target])?;
        self.rows += 1;
        Ok(())
    }

    /// Adds a record's target cell. A target column is numeric until its first text cell; the
    /// missing cells before that become missing codes.
    fn push_target(&mut self, path: &Path, line: u64, raw: &[u8]) -> Result<(), NablaError> {
        let cell = self.target.cell(path, line, raw)?;
        if matches!(cell, Cell::Missing) {
            note_missing(&mut self.first_missing, line, &self.target.name, raw);
        }
        match self.target.kind {
            Some(false) => {
                if !self.numeric_target.is_empty() {
                    // Only missing cells so far: they become missing codes.
                    let n = self.numeric_target.len();
                    self.codes.extend(std::iter::repeat_n(MISSING_CODE, n));
                    self.numeric_target.clear();
                }
                self.codes.push(match cell {
                    Cell::Code(c) => c,
                    _ => MISSING_CODE,
                });
            }
            _ => self.numeric_target.push(match cell {
                Cell::Number(v) => v,
                _ => f64::NAN,
            }),
        }
        Ok(())
    }

    /// The table, once every record is in: refuses a file without data rows and columns
    /// without a single value.
    fn finish(
        mut self,
        path: &Path,
        header_line: u64,
        delimiter: u8,
    ) -> Result<RawTable, NablaError> {
        let rows = self.rows;
        if rows == 0 {
            return Err(NablaError::data(
                path,
                format!("line {}", header_line + 1),
                "no data rows after the header, expected at least one",
            ));
        }
        if let Some(c) = self.columns.iter().find(|c| c.kind.is_none()) {
            return Err(NablaError::data_with(
                path,
                format!("column {:?}", c.name),
                Message::new()
                    .text(format!(
                        "all {rows} cells are missing, expected some values (or "
                    ))
                    .setting(Setting::Drop)
                    .text(" it)"),
            ));
        }
        if self.target.kind.is_none() {
            return Err(NablaError::data(
                path,
                format!("column {:?}", self.target.name),
                format!("all {rows} target cells are missing"),
            ));
        }
        self.values.shrink_to_fit();
        let target = if self.target.kind == Some(false) {
            RawTarget::Text {
                codes: self.codes,
                names: self.target.names,
            }
        } else {
            RawTarget::Numeric(self.numeric_target)
        };
        Ok(RawTable {
            path: path.to_path_buf(),
            columns: self.columns.into_iter().map(Builder::into_column).collect(),
            values: self.values,
            target_name: self.target.name,
            target,
            target_missing: self.target.missing,
            first_missing: self.first_missing,
            delimiter,
        })
    }
}

impl Builder {
    /// The finished feature column.
    fn into_column(self) -> Column {
        Column {
            name: self.name,
            kind: if self.kind == Some(true) {
                ColumnKind::Numeric
            } else {
                ColumnKind::Categorical(self.names)
            },
            missing: self.missing,
        }
    }
}

/// Records the first missing cell of the file (for the message refusing missing values).
fn note_missing(first: &mut Option<MissingAt>, line: u64, column: &str, raw: &[u8]) {
    if first.is_none() {
        *first = Some(MissingAt {
            line,
            column: column.to_string(),
            text: String::from_utf8_lossy(trim(raw)).into_owned(),
        });
    }
}

/// `"a", "b", "c"` (at most 12 names).
fn list(names: &[String]) -> String {
    let mut s: Vec<String> = names.iter().take(12).map(|n| format!("{n:?}")).collect();
    if names.len() > 12 {
        s.push(format!("… ({} columns)", names.len()));
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str, options: &CsvOptions) -> Result<RawTable, NablaError> {
        read_bytes(Path::new("t.csv"), text.as_bytes(), options)
    }

    #[test]
    fn detects_delimiters_outside_quotes() {
        assert_eq!(detect_delimiter(b"a,b,c\n"), b',');
        assert_eq!(detect_delimiter(b"a;b;c\r\n1,5;2"), b';');
        assert_eq!(detect_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(detect_delimiter(b"\"x;y;z\",b\n"), b',');
        assert_eq!(detect_delimiter(b"\xef\xbb\xbfa;b"), b';');
    }

    #[test]
    fn reads_numbers_categories_quotes_crlf_and_bom() {
        let t = read_str(
            "\u{feff}x,\"col, b\",y\r\n1.5,red,a\r\n-2,\"blue\",b\r\n3e2, red ,a\r\n",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(t.rows(), 3);
        assert_eq!(t.columns[0].name, "x");
        assert_eq!(t.columns[1].name, "col, b");
        assert_eq!(
            t.columns[1].kind,
            ColumnKind::Categorical(vec!["red".into(), "blue".into()])
        );
        assert_eq!(t.values, vec![1.5, 0.0, -2.0, 1.0, 300.0, 0.0]);
        assert_eq!(
            t.target,
            RawTarget::Text {
                codes: vec![0, 1, 0],
                names: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn missing_cells_are_counted_and_located() {
        let t = read_str("a,b,y\n1,,0\nNA,2,1\n3,null,\n", &CsvOptions::default()).unwrap();
        assert_eq!(t.missing(), 4);
        assert_eq!(t.target_missing, 1);
        let at = t.first_missing.unwrap();
        assert_eq!((at.line, at.column.as_str()), (2, "b"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let o = CsvOptions::default();
        let e = read_str("a,y\n1,0\nzz,1\n", &o).unwrap_err().to_string();
        assert!(e.contains("line 3, column \"a\""), "{e}");
        let e = read_str("a,y\n1,0\ninf,1\n", &o).unwrap_err().to_string();
        assert!(e.contains("finite"), "{e}");
        let e = read_str("a,y\n1e300,0\n", &o).unwrap_err().to_string();
        assert!(e.contains("3.4e38"), "{e}");
        let e = read_str("a,y\n1,0\n1,2,3\n", &o).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("3 fields"), "{e}");
        let e = read_str("a,a\n1,0\n", &o).unwrap_err().to_string();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn errors_name_settings_by_key() {
        let text = "id,a,y\n1,2,3\n";
        let e = |options: CsvOptions| read_str(text, &options).unwrap_err().to_string();
        let drop_target = e(CsvOptions {
            drop: vec!["y".into()],
            ..Default::default()
        });
        assert_eq!(drop_target, "`drop = \"y\"` names the target column");
        let twice = e(CsvOptions {
            features: Some(vec!["a".into(), "a".into()]),
            ..Default::default()
        });
        assert_eq!(twice, "`features` lists \"a\" twice");
        let one_column = read_str("a|y\n1|2\n", &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(one_column.contains("set `delimiter` if"), "{one_column}");
        for message in [drop_target, twice, one_column] {
            assert!(!message.contains("--"), "{message}");
        }
    }

    #[test]
    fn selects_target_features_and_drop() {
        let text = "id,a,b,y\n1,2,3,4\n";
        let t = read_str(
            text,
            &CsvOptions {
                target: Some("a".into()),
                drop: vec!["id".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "y"]);
        assert_eq!(t.target, RawTarget::Numeric(vec![2.0]));
        let t = read_str(
            text,
            &CsvOptions {
                features: Some(vec!["b".into(), "id".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.values, vec![3.0, 1.0]);
        assert!(
            read_str(
                text,
                &CsvOptions {
                    target: Some("zz".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
