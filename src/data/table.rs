//! From a [`RawTable`] to training, validation and test [`Dataset`]s: task detection, missing
//! values, seeded splits, one-hot encoding and scaling, all fitted on the training split only.
//!
//! What this module owns: every decision that needs the whole table. What it must not do: read
//! bytes (that is [`crate::data::csv`]) or know about training.
//!
//! Task detection: a text target is classification; a numeric target is classification when
//! every value is an integer and there are at most [`MAX_INTEGER_CLASSES`] distinct values,
//! regression otherwise; [`TableOptions::task`] overrides. Class order is fixed and does not
//! depend on the row order: text classes sort lexicographically (by bytes), numeric classes
//! numerically (`"2"` before `"10"`).
//!
//! Memory: the table's cells are split in place (held-out rows copied out, training rows
//! compacted) and scaled in place when there is no categorical column, so the peak stays near
//! one copy of the cells.

use std::collections::HashMap;
use std::path::Path;

use super::csv::{Column, ColumnKind, MISSING_CODE, RawTable, RawTarget};
use super::dataset::{Dataset, Features};
use super::preprocess::{ColumnEncoding, Preprocess, Scaling, TargetEncoding, fit_column};
use super::split;
use crate::error::{Message, NablaError, Setting, cut_name};
use crate::task::Task;

/// An integer target with at most this many distinct values is taken as class labels.
pub const MAX_INTEGER_CLASSES: usize = 20;

/// The most classes a classification target may have.
pub const MAX_CLASSES: usize = 1000;

/// What to do with missing cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Impute {
    /// Refuse the file, naming the first missing cell and the count.
    #[default]
    Refuse,
    /// Numeric cells: the training split's mean; text cells: its most frequent category. Rows
    /// whose target is missing are dropped.
    Mean,
    /// Numeric cells: the training split's median; text cells: its most frequent category. Rows
    /// whose target is missing are dropped.
    Median,
    /// Drop every row with a missing cell.
    DropRows,
}

/// Settings of [`prepare`].
#[derive(Clone, Debug)]
pub struct TableOptions {
    /// Force classification or regression; `None`: detect.
    pub task: Option<Task>,
    /// Missing values.
    pub impute: Impute,
    /// Scaling of the numeric inputs.
    pub scaling: Scaling,
    /// Fraction of the rows held out as the test set (ignored with a separate test file).
    pub test_split: f64,
    /// Fraction of the training part held out as the validation set (0: none).
    pub val_split: f64,
    /// Keep exactly this many of the training rows (a seeded, stratified subset), taken after
    /// the test split and before the validation split, which is carved from them.
    pub limit_train: Option<usize>,
    /// Seed of the splits.
    pub seed: u64,
}

/// The datasets and the fitted preprocessing.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The training split.
    pub train: Dataset,
    /// The validation split, when `val_split > 0`.
    pub val: Option<Dataset>,
    /// The test split or the separate test file.
    pub test: Dataset,
    /// What was learned from the training split.
    pub preprocess: Preprocess,
    /// Things the user should know (dropped rows, unseen categories, tiny classes).
    pub warnings: Vec<String>,
}

/// Rows of a table: cells row-major (`NaN` missing, a category code, `UNSEEN` for a test
/// category unknown to training), and a class label or a real target per row.
struct Part {
    values: Vec<f32>,
    labels: Vec<u32>,
    targets: Vec<f64>,
}

/// Category code of a text the training file never had.
const UNSEEN: f32 = -1.0;

impl Part {
    fn rows(&self, stride: usize) -> usize {
        self.values.len() / stride.max(1)
    }

    /// Copies rows `idx` out.
    fn take(&self, stride: usize, idx: &[usize]) -> Part {
        let mut values = Vec::with_capacity(idx.len() * stride);
        for &i in idx {
            values.extend_from_slice(&self.values[i * stride..(i + 1) * stride]);
        }
        Part {
            values,
            labels: pick(&self.labels, idx),
            targets: pick(&self.targets, idx),
        }
    }

    /// Keeps rows `idx` (sorted, unique) in place.
    fn keep(&mut self, stride: usize, idx: &[usize]) {
        for (to, &from) in idx.iter().enumerate() {
            if to != from {
                self.values
                    .copy_within(from * stride..(from + 1) * stride, to * stride);
            }
        }
        self.values.truncate(idx.len() * stride);
        self.values.shrink_to_fit();
        self.labels = pick(&self.labels, idx);
        self.targets = pick(&self.targets, idx);
    }

    fn target_missing(&self, i: usize) -> bool {
        self.labels.get(i).is_some_and(|&l| l == MISSING_CODE)
            || self.targets.get(i).is_some_and(|t| t.is_nan())
    }
}

fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    if v.is_empty() {
        Vec::new()
    } else {
        idx.iter().map(|&i| v[i]).collect()
    }
}

/// How the target was read: classes by name, or real values.
enum TargetPlan {
    Classes(Vec<String>),
    Regression,
}

/// A class name for a numeric value: integers without a decimal point.
fn number_name(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.007e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn plan_target(raw: &RawTable, task: Option<Task>) -> Result<TargetPlan, NablaError> {
    let name = &raw.target_name;
    let plan = match &raw.target {
        RawTarget::Text { names, .. } => {
            if task == Some(Task::Regression) {
                return Err(NablaError::data_with(
                    &raw.path,
                    format!("column {name:?}"),
                    Message::new()
                        .value(Setting::Task, "regression")
                        .text(format!(
                            ", but the target holds text (e.g. {:?}), expected numbers",
                            cut_name(names.first().map_or("", |s| s.as_str()))
                        )),
                ));
            }
            let mut classes = names.clone();
            classes.sort();
            TargetPlan::Classes(classes)
        }
        RawTarget::Numeric(values) => {
            let mut distinct: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            // Beyond 1e15 every f64 is a whole number: that says nothing about class labels.
            let integers = distinct.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let classify = match task {
                Some(t) => t == Task::Classification,
                None => integers && distinct.len() <= MAX_INTEGER_CLASSES,
            };
            if !classify {
                return Ok(TargetPlan::Regression);
            }
            if distinct.len() > MAX_CLASSES {
                return Err(NablaError::data_with(
                    &raw.path,
                    format!("column {name:?}"),
                    Message::new()
                        .text(format!(
                            "{} distinct target values, more than the {MAX_CLASSES} classes nabla accepts; use ",
                            distinct.len()
                        ))
                        .value(Setting::Task, "regression"),
                ));
            }
            TargetPlan::Classes(distinct.into_iter().map(number_name).collect())
        }
    };
    if let TargetPlan::Classes(classes) = &plan
        && classes.len() < 2
    {
        return Err(NablaError::data(
            &raw.path,
            format!("column {name:?}"),
            format!(
                "the target has a single class ({}), expected at least two for classification",
                classes
                    .first()
                    .map_or("none".into(), |c| format!("{:?}", cut_name(c)))
            ),
        ));
    }
    Ok(plan)
}

/// Turns a raw table's target into labels (by class name) or real values.
fn to_part(raw: RawTable, plan: &TargetPlan) -> Result<(Part, std::path::PathBuf), NablaError> {
    let path = raw.path;
    let mut part = Part {
        values: raw.values,
        labels: Vec::new(),
        targets: Vec::new(),
    };
    match plan {
        TargetPlan::Regression => match raw.target {
            RawTarget::Numeric(v) => part.targets = v,
            RawTarget::Text { .. } => {
                return Err(NablaError::data(
                    &path,
                    format!("column {:?}", raw.target_name),
                    "the target holds text, expected numbers like the training file",
                ));
            }
        },
        TargetPlan::Classes(classes) => {
            let index: HashMap<&str, u32> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as u32))
                .collect();
            let lookup = |name: &str, row: usize| -> Result<u32, NablaError> {
                index.get(name).copied().ok_or_else(|| {
                    NablaError::data(
                        &path,
                        format!("data row {}, column {:?}", row + 1, raw.target_name),
                        format!(
                            "class {:?} does not occur in the training data, expected one of its {} classes",
                            cut_name(name),
                            classes.len()
                        ),
                    )
                })
            };
            part.labels = match &raw.target {
                RawTarget::Text { codes, names } => {
                    let mut map = Vec::with_capacity(names.len());
                    for n in names {
                        map.push(index.get(n.as_str()).copied());
                    }
                    codes
                        .iter()
                        .enumerate()
                        .map(|(row, &c)| match c {
                            MISSING_CODE => Ok(MISSING_CODE),
                            c => {
                                map[c as usize].map_or_else(|| lookup(&names[c as usize], row), Ok)
                            }
                        })
                        .collect::<Result<_, _>>()?
                }
                RawTarget::Numeric(values) => values
                    .iter()
                    .enumerate()
                    .map(|(row, &v)| {
                        if v.is_nan() {
                            Ok(MISSING_CODE)
                        } else {
                            lookup(&number_name(v), row)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            };
        }
    }
    Ok((part, path))
}

/// Refuses missing cells (the default) or drops the rows the impute mode cannot fill.
fn handle_missing(
    raw: &RawTable,
    part: &mut Part,
    stride: usize,
    impute: Impute,
    warnings: &mut Vec<String>,
) -> Result<(), NablaError> {
    let missing = raw.missing();
    if missing == 0 {
        return Ok(());
    }
    let path = &raw.path;
    if impute == Impute::Refuse {
        let (location, found) = match &raw.first_missing {
            Some(at) => (
                format!("line {}, column {:?}", at.line, at.column),
                format!("{:?}", at.text),
            ),
            None => ("content".to_string(), "a missing value".to_string()),
        };
        return Err(NablaError::data_with(
            path,
            location,
            Message::new()
                .text(format!(
                    "found a missing value {found}, one of {missing} missing cells in the file (empty, NA, NaN or null); expected a value, or pass "
                ))
                .value(Setting::Impute, "mean|median|drop-rows"),
        ));
    }
    let rows = part.rows(stride);
    let keep: Vec<usize> = (0..rows)
        .filter(|&i| {
            !part.target_missing(i)
                && (impute != Impute::DropRows
                    || part.values[i * stride..(i + 1) * stride]
                        .iter()
                        .all(|v| !v.is_nan()))
        })
        .collect();
    if keep.len() < rows {
        if keep.is_empty() {
            return Err(NablaError::data(
                path,
                "content",
                format!(
                    "every one of the {rows} rows has a missing value; nothing is left to train on"
                ),
            ));
        }
        warnings.push(format!(
            "{}: dropped {} of {rows} rows with a missing {}",
            path.display(),
            rows - keep.len(),
            if impute == Impute::DropRows {
                "value"
            } else {
                "target"
            }
        ));
        part.keep(stride, &keep);
    }
    Ok(())
}

/// Advice when nearly every class has a single row (in warnings, which are plain text).
const IDENTIFIER_HINT: &str = "the target looks like an identifier or a regression target, not classes (more rows will not help); choose another --target, or pass --task regression for a numeric target";

/// Whether `singles` one-row classes among `rows` rows mean the target is no class label: at
/// least 10 such classes, holding at least 90% of the rows.
fn identifier_like(singles: usize, rows: usize) -> bool {
    singles >= 10 && singles * 10 >= rows * 9
}

/// The error when no row can be held out of `rows` for the `what` set (`singles` of them being
/// the only row of their class): "add rows", unless the target looks like an identifier.
fn cannot_split(rows: usize, singles: usize, what: &str) -> NablaError {
    let head = format!(
        "{rows} row{} cannot be split into training and {what} sets",
        if rows == 1 { "" } else { "s" },
    );
    if identifier_like(singles, rows) {
        return NablaError::Settings(
            Message::new()
                .text(format!(
                    "{head}: {singles} of them are the only row of their class; the target looks like an identifier or a regression target, not classes (more rows will not help); choose another "
                ))
                .setting(Setting::Target)
                .text(", or pass ")
                .value(Setting::Task, "regression")
                .text(" for a numeric target"),
        );
    }
    let message = Message::new().text(format!("{head}; add rows"));
    NablaError::Settings(if what == "test" {
        message
            .text(", pass ")
            .value(Setting::TestData, "FILE")
            .text(" or ")
            .value(Setting::TestSplit, "0")
    } else {
        message.text(" or pass ").value(Setting::ValSplit, "0")
    })
}

/// Splits `part` (in place) into kept and held-out rows.
fn split_part(
    part: &mut Part,
    stride: usize,
    fraction: f64,
    seed: u64,
    stream: u64,
    class_names: &[String],
    warnings: &mut Vec<String>,
) -> Result<Part, NablaError> {
    let what = if stream == 0 { "test" } else { "validation" };
    let rows = part.rows(stride);
    let s = if part.labels.is_empty() {
        split::random(rows, fraction, seed, stream)?
    } else {
        split::stratified_stream(&part.labels, class_names.len(), fraction, seed, stream)?
    };
    if identifier_like(s.too_small.len(), rows) {
        warnings.push(format!(
            "{} of the {rows} rows are the only row of their class (kept for training only): {IDENTIFIER_HINT}",
            s.too_small.len()
        ));
    } else if !s.too_small.is_empty() {
        let names: Vec<String> = s
            .too_small
            .iter()
            .take(5)
            .map(|&c| {
                format!(
                    "{:?}",
                    cut_name(class_names.get(c as usize).map_or("?", |s| s))
                )
            })
            .collect();
        warnings.push(format!(
            "{} class{} with a single sample ({}{}) cannot be stratified into the {what} set; kept for training only",
            s.too_small.len(),
            if s.too_small.len() == 1 { "" } else { "es" },
            names.join(", "),
            if s.too_small.len() > 5 { ", …" } else { "" }
        ));
    }
    if fraction > 0.0 && s.held.is_empty() {
        return Err(cannot_split(rows, s.too_small.len(), what));
    }
    let held = part.take(stride, &s.held);
    part.keep(stride, &s.kept);
    Ok(held)
}

/// Reads `raw` (and a separate test file `test_raw`, read with the same column kinds) into
/// datasets; see the module documentation for the rules.
pub fn prepare(
    name: &str,
    raw: RawTable,
    test_raw: Option<RawTable>,
    options: &TableOptions,
) -> Result<Prepared, NablaError> {
    let mut warnings = Vec::new();
    let stride = raw.columns.len();
    let plan = plan_target(&raw, options.task)?;
    let columns = raw.columns.clone();
    let target_name = raw.target_name.clone();
    if let Some(t) = &test_raw {
        check_same_columns(&raw, t)?;
    }
    let (train, path) = load_part(raw, &plan, stride, options.impute, &mut warnings)?;
    let test_file = match test_raw {
        Some(t) => {
            let t = renumber_categories(&columns, t);
            Some(load_part(t, &plan, stride, options.impute, &mut warnings)?)
        }
        None => None,
    };
    let (mut parts, test_name) = hold_out(
        name,
        train,
        test_file,
        stride,
        options,
        plan.class_names(),
        &mut warnings,
    )?;

    // Fit on the training rows only, then encode every part.
    let fitted = Fitted::fit(&columns, &mut parts, options, &path)?;
    if fitted.features.is_empty() {
        return Err(NablaError::Usage(format!(
            "{}: the training split gives no input features",
            path.display()
        )));
    }
    let target = target_encoding(target_name, plan, &parts.train);
    let (preprocess, onehot) = fitted.into_preprocess(options.scaling, target);

    let mut unseen = vec![0usize; stride];
    let mut build = |part: Part, name: String| {
        to_dataset(part, name, stride, &onehot, &preprocess, &mut unseen)
    };
    let test = build(parts.test, test_name)?;
    let val = match parts.val {
        Some(v) => Some(build(v, format!("{name} (validation)"))?),
        None => None,
    };
    let train = build(parts.train, name.to_string())?;
    warn_unseen(&columns, &unseen, &mut warnings);
    Ok(Prepared {
        train,
        val,
        test,
        preprocess,
        warnings,
    })
}

/// The target's classes, or (regression) its center and scale: regression targets are
/// standardised inside, whatever the scaling setting says.
fn target_encoding(name: String, plan: TargetPlan, train: &Part) -> TargetEncoding {
    match plan {
        TargetPlan::Regression => {
            let (center, scale) = fit_column(train.targets.iter().copied(), Scaling::Standard);
            TargetEncoding {
                name,
                task: Task::Regression,
                classes: Vec::new(),
                center,
                scale,
            }
        }
        TargetPlan::Classes(classes) => TargetEncoding {
            name,
            task: Task::Classification,
            classes,
            center: 0.0,
            scale: 1.0,
        },
    }
}

impl TargetPlan {
    /// The class names; empty for regression.
    fn class_names(&self) -> &[String] {
        match self {
            TargetPlan::Classes(c) => c,
            TargetPlan::Regression => &[],
        }
    }
}

/// A table's rows as a [`Part`] with labels or targets, less the rows its missing cells rule
/// out (or an error refusing them). Returns the part and the table's path.
fn load_part(
    raw: RawTable,
    plan: &TargetPlan,
    stride: usize,
    impute: Impute,
    warnings: &mut Vec<String>,
) -> Result<(Part, std::path::PathBuf), NablaError> {
    let info = raw.clone_header();
    let (mut part, path) = to_part(raw, plan)?;
    handle_missing(&info, &mut part, stride, impute, warnings)?;
    Ok((part, path))
}

/// Renumbers a test file's category codes into the training file's (`UNSEEN` for a text the
/// training file does not have).
fn renumber_categories(train_columns: &[Column], mut test: RawTable) -> RawTable {
    let stride = test.columns.len();
    for (c, (train_col, test_col)) in train_columns.iter().zip(&test.columns).enumerate() {
        if let (ColumnKind::Categorical(train_names), ColumnKind::Categorical(test_names)) =
            (&train_col.kind, &test_col.kind)
        {
            let index: HashMap<&str, usize> = train_names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let map: Vec<f32> = test_names
                .iter()
                .map(|n| index.get(n.as_str()).map_or(UNSEEN, |&i| i as f32))
                .collect();
            for v in test.values.iter_mut().skip(c).step_by(stride.max(1)) {
                if !v.is_nan() {
                    *v = map.get(*v as usize).copied().unwrap_or(UNSEEN);
                }
            }
        }
    }
    test
}

/// The training, validation and test rows, `stride` cells per row.
struct Parts {
    stride: usize,
    train: Part,
    val: Option<Part>,
    test: Part,
}

impl Parts {
    /// Column `c` of the training rows.
    fn train_column(&self, c: usize) -> impl Iterator<Item = f32> + Clone + '_ {
        self.train
            .values
            .iter()
            .skip(c)
            .step_by(self.stride.max(1))
            .copied()
    }

    /// True if column `c` has a missing cell in the validation or test rows.
    fn held_out_missing(&self, c: usize) -> bool {
        std::iter::once(&self.test)
            .chain(self.val.as_ref())
            .any(|p| {
                p.values
                    .iter()
                    .skip(c)
                    .step_by(self.stride.max(1))
                    .any(|v| v.is_nan())
            })
    }

    /// Replaces the missing cells of column `c` in every part with `value`.
    fn fill(&mut self, c: usize, value: f32) {
        let stride = self.stride.max(1);
        for part in std::iter::once(&mut self.train)
            .chain(self.val.as_mut())
            .chain(std::iter::once(&mut self.test))
        {
            for v in part.values.iter_mut().skip(c).step_by(stride) {
                if v.is_nan() {
                    *v = value;
                }
            }
        }
    }
}

/// Splits the test rows (unless a separate test file gave them) and then the validation rows
/// off the training rows. Returns the parts and the test set's name.
fn hold_out(
    name: &str,
    mut train: Part,
    test_file: Option<(Part, std::path::PathBuf)>,
    stride: usize,
    options: &TableOptions,
    class_names: &[String],
    warnings: &mut Vec<String>,
) -> Result<(Parts, String), NablaError> {
    let seed = options.seed;
    let (test, test_name) = match test_file {
        Some((part, test_path)) => (part, test_path.display().to_string()),
        None => {
            let held = split_part(
                &mut train,
                stride,
                options.test_split,
                seed,
                0,
                class_names,
                warnings,
            )?;
            (held, format!("{name} (test)"))
        }
    };
    if let Some(n) = options.limit_train {
        let rows = train.rows(stride);
        let keep = split::sample_exactly(&train.labels, class_names.len(), rows, n, seed, 7)?;
        train.keep(stride, &keep);
    }
    let val = if options.val_split > 0.0 {
        Some(split_part(
            &mut train,
            stride,
            options.val_split,
            seed,
            1,
            class_names,
            warnings,
        )?)
    } else {
        None
    };
    let parts = Parts {
        stride,
        train,
        val,
        test,
    };
    Ok((parts, test_name))
}

/// A categorical column's one-hot position of each category code (`None`: the category does
/// not occur in the training rows).
type Positions = Vec<Option<usize>>;

/// What fitting on the training rows gives, column by column.
#[derive(Default)]
struct Fitted {
    encodings: Vec<ColumnEncoding>,
    /// Input names (one per one-hot category), with each input's center and scale.
    features: Vec<String>,
    center: Vec<f64>,
    scale: Vec<f64>,
    /// Per column: the one-hot positions of its codes; `None` for a numeric column.
    onehot: Vec<Option<Positions>>,
}

impl Fitted {
    /// Fits every column on the training rows, filling missing cells in every part when
    /// imputing.
    fn fit(
        columns: &[Column],
        parts: &mut Parts,
        options: &TableOptions,
        path: &Path,
    ) -> Result<Fitted, NablaError> {
        let mut fitted = Fitted::default();
        for (c, column) in columns.iter().enumerate() {
            match &column.kind {
                ColumnKind::Numeric => fitted.numeric(parts, c, column, options, path)?,
                ColumnKind::Categorical(names) => {
                    fitted.categorical(parts, c, &column.name, names, options.impute)
                }
            }
        }
        Ok(fitted)
    }

    /// A numeric column: the imputed value (mean or median of the training rows, when the
    /// column has missing cells anywhere), then its center and scale.
    fn numeric(
        &mut self,
        parts: &mut Parts,
        c: usize,
        column: &Column,
        options: &TableOptions,
        path: &Path,
    ) -> Result<(), NablaError> {
        let fill = match options.impute {
            Impute::Mean | Impute::Median if column.missing > 0 || parts.held_out_missing(c) => {
                let value = impute_value(parts.train_column(c), options.impute);
                Some(value.ok_or_else(|| {
                    NablaError::data(
                        path,
                        format!("column {:?}", column.name),
                        "no value in the training split to impute from",
                    )
                })?)
            }
            _ => None,
        };
        if let Some(f) = fill {
            parts.fill(c, f as f32);
        }
        let (center, scale) = fit_column(parts.train_column(c).map(f64::from), options.scaling);
        self.features.push(column.name.clone());
        self.center.push(center);
        self.scale.push(scale);
        self.encodings.push(ColumnEncoding::Numeric {
            name: column.name.clone(),
            impute: fill,
        });
        self.onehot.push(None);
        Ok(())
    }

    /// A categorical column: one input per category seen in the training rows (sorted by
    /// text), and the most frequent category as the imputed value when imputing.
    fn categorical(
        &mut self,
        parts: &mut Parts,
        c: usize,
        name: &str,
        names: &[String],
        impute: Impute,
    ) {
        let mut counts = vec![0usize; names.len()];
        for v in parts.train_column(c) {
            if v >= 0.0 && (v as usize) < counts.len() {
                counts[v as usize] += 1;
            }
        }
        let mut seen: Vec<usize> = (0..names.len()).filter(|&i| counts[i] > 0).collect();
        seen.sort_by(|&a, &b| names[a].cmp(&names[b]));
        let mut position = vec![None; names.len()];
        for (p, &code) in seen.iter().enumerate() {
            position[code] = Some(p);
        }
        let mode = (0..names.len())
            .filter(|&i| counts[i] > 0)
            .max_by_key(|&i| (counts[i], std::cmp::Reverse(names[i].clone())));
        let fill = match impute {
            Impute::Mean | Impute::Median => mode,
            _ => None,
        };
        if let Some(f) = fill {
            parts.fill(c, f as f32);
        }
        for &code in &seen {
            self.features.push(format!("{name}={}", names[code]));
            self.center.push(0.0);
            self.scale.push(1.0);
        }
        self.encodings.push(ColumnEncoding::Categorical {
            name: name.to_string(),
            categories: seen.iter().map(|&i| names[i].clone()).collect(),
            impute: fill.map(|i| names[i].clone()),
        });
        self.onehot.push(Some(position));
    }

    /// The preprocessing a saved model keeps, and the one-hot positions for encoding.
    fn into_preprocess(
        self,
        scaling: Scaling,
        target: TargetEncoding,
    ) -> (Preprocess, Vec<Option<Positions>>) {
        let preprocess = Preprocess {
            features: self.features,
            center: self.center,
            scale: self.scale,
            scaling,
            columns: self.encodings,
            target,
        };
        (preprocess, self.onehot)
    }
}

/// The mean or median of the present (non-missing) values; `None` if there are none.
fn impute_value(values: impl Iterator<Item = f32>, impute: Impute) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|v| !v.is_nan()).map(f64::from).collect();
    if v.is_empty() {
        return None;
    }
    Some(if impute == Impute::Mean {
        v.iter().sum::<f64>() / v.len() as f64
    } else {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    })
}

/// Encodes a part's cells into a dataset; adds, per column, the rows whose category the
/// training rows never had to `unseen`.
fn to_dataset(
    part: Part,
    name: String,
    stride: usize,
    onehot: &[Option<Positions>],
    preprocess: &Preprocess,
    unseen: &mut [usize],
) -> Result<Dataset, NablaError> {
    let (features, part_unseen) = encode(part.values, stride, onehot, preprocess);
    for (total, u) in unseen.iter_mut().zip(part_unseen) {
        *total += u;
    }
    let dim = preprocess.inputs();
    let target = &preprocess.target;
    if target.classes.is_empty() {
        let targets = part
            .targets
            .iter()
            .map(|&t| ((t - target.center) / target.scale) as f32)
            .collect();
        Dataset::regression(name, features, dim, targets, target.center, target.scale)
    } else {
        Dataset::new(name, features, dim, part.labels, target.classes.clone())
    }
}

/// A warning per column with categories that validation or test rows had and training did not.
fn warn_unseen(columns: &[Column], unseen: &[usize], warnings: &mut Vec<String>) {
    for (c, &u) in unseen.iter().enumerate() {
        if u > 0 {
            warnings.push(format!(
                "column {:?}: {u} validation/test row{} had a category not seen in training; encoded as all zeros",
                columns[c].name,
                if u == 1 { "" } else { "s" }
            ));
        }
    }
}

/// Encodes and scales a part's cells; returns the features and, per column, how many rows had
/// an unseen category.
fn encode(
    mut values: Vec<f32>,
    stride: usize,
    onehot: &[Option<Positions>],
    pre: &Preprocess,
) -> (Features, Vec<usize>) {
    let mut unseen = vec![0usize; stride];
    if onehot.iter().all(Option::is_none) {
        // Same width: scale in place.
        for row in values.chunks_exact_mut(stride.max(1)) {
            for ((v, &c), &s) in row.iter_mut().zip(&pre.center).zip(&pre.scale) {
                *v = ((f64::from(*v) - c) / s) as f32;
            }
        }
        return (Features::F32(values), unseen);
    }
    let dim = pre.inputs();
    let rows = values.len() / stride.max(1);
    let widths: Vec<usize> = onehot
        .iter()
        .map(|p| p.as_ref().map_or(1, |p| p.iter().flatten().count()))
        .collect();
    let mut out = vec![0.0f32; rows * dim];
    for (row, o) in values
        .chunks_exact(stride.max(1))
        .zip(out.chunks_exact_mut(dim))
    {
        let mut k = 0;
        for (c, &v) in row.iter().enumerate() {
            match &onehot[c] {
                None => {
                    o[k] = ((f64::from(v) - pre.center[k]) / pre.scale[k]) as f32;
                    k += 1;
                }
                Some(position) => {
                    let width = widths[c];
                    match (v >= 0.0)
                        .then(|| position.get(v as usize).copied().flatten())
                        .flatten()
                    {
                        Some(p) => o[k + p] = 1.0,
                        None => unseen[c] += 1,
                    }
                    k += width;
                }
            }
        }
    }
    values.clear();
    values.shrink_to_fit();
    (Features::F32(out), unseen)
}

fn check_same_columns(train: &RawTable, test: &RawTable) -> Result<(), NablaError> {
    let a: Vec<&str> = train.columns.iter().map(|c| c.name.as_str()).collect();
    let b: Vec<&str> = test.columns.iter().map(|c| c.name.as_str()).collect();
    if a != b || train.target_name != test.target_name {
        return Err(NablaError::data(
            &test.path,
            "header",
            format!(
                "feature columns {b:?} and target {:?}, expected the training file's {a:?} and target {:?}",
                test.target_name, train.target_name
            ),
        ));
    }
    for (x, y) in train.columns.iter().zip(&test.columns) {
        if matches!(x.kind, ColumnKind::Numeric) != matches!(y.kind, ColumnKind::Numeric) {
            return Err(NablaError::data(
                &test.path,
                format!("column {:?}", x.name),
                "holds text where the training file has numbers (or the reverse)",
            ));
        }
    }
    Ok(())
}

impl RawTable {
    /// Everything but the cells and targets (for messages about missing values).
    fn clone_header(&self) -> RawTable {
        RawTable {
            path: self.path.clone(),
            columns: self.columns.clone(),
            values: Vec::new(),
            target_name: self.target_name.clone(),
            target: RawTarget::Numeric(Vec::new()),
            target_missing: self.target_missing,
            first_missing: self.first_missing.clone(),
            delimiter: self.delimiter,
        }
    }
}

/// Carves a validation set out of `train` (stratified, seeded: split sub-stream 1) for data
/// that arrives as datasets (IDX). Returns `(train, validation, warnings)`.
pub fn carve_validation(
    train: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset, Vec<String>), NablaError> {
    let s = split::stratified_stream(train.labels(), train.classes().len(), fraction, seed, 1)?;
    let mut warnings = Vec::new();
    if !s.too_small.is_empty() {
        warnings.push(format!(
            "{} class(es) with a single sample cannot be stratified into the validation set; kept for training only",
            s.too_small.len()
        ));
    }
    if s.held.is_empty() {
        return Err(NablaError::Settings(
            Message::new()
                .text(format!(
                    "{} rows cannot be split into training and validation sets; pass ",
                    train.len()
                ))
                .value(Setting::ValSplit, "0"),
        ));
    }
    Ok((
        train.subset(&s.kept, train.name()),
        train.subset(&s.held, format!("{} (validation)", train.name())),
        warnings,
    ))
}

/// Reads a CSV file and prepares it: [`crate::data::csv::read`] then [`prepare`]. A separate
/// test file is read with the training file's column kinds.
pub fn load_csv(
    path: &Path,
    test_path: Option<&Path>,
    csv_options: &super::csv::CsvOptions,
    options: &TableOptions,
) -> Result<Prepared, NablaError> {
    let raw = super::csv::read(path, csv_options)?;
    let test = match test_path {
        Some(t) => Some(super::csv::read(t, &test_options(&raw, csv_options))?),
        None => None,
    };
    prepare(&path.display().to_string(), raw, test, options)
}

/// Options reading a test file with `train`'s columns and column kinds.
pub fn test_options(
    train: &RawTable,
    csv_options: &super::csv::CsvOptions,
) -> super::csv::CsvOptions {
    let mut o = csv_options.clone();
    o.target = Some(train.target_name.clone());
    o.features = Some(train.columns.iter().map(|c| c.name.clone()).collect());
    o.drop.clear();
    o.columns_of = Some(train.path.clone());
    o.text_columns.clear();
    o.numeric_columns.clear();
    for c in &train.columns {
        match c.kind {
            ColumnKind::Numeric => o.numeric_columns.push(c.name.clone()),
            ColumnKind::Categorical(_) => o.text_columns.push(c.name.clone()),
        }
    }
    match train.target {
        RawTarget::Numeric(_) => o.numeric_columns.push(train.target_name.clone()),
        RawTarget::Text { .. } => o.text_columns.push(train.target_name.clone()),
    }
    o
}
