//! `nabla evaluate`: a saved model's quality on labelled data: loss, accuracy, per-class
//! precision/recall/F1 and the confusion matrix (classification), or MAE, RMSE and R²
//! (regression).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use nabla::io::Model;
use nabla::io::input::{Rows, Targets};

use super::predict::BATCH;

/// Flags of `nabla evaluate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla evaluate --model model.safetensors --data test.csv\n  nabla evaluate --model mnist.safetensors --data ../shared/datasets/mnist --json"
)]
pub struct EvaluateArgs {
    /// The model file (from `nabla train --save`), or a run folder holding model.safetensors.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// Labelled data: a CSV file with the model's input columns and its target column, or a
    /// folder of IDX files (its t10k images and labels).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Precision, recall and F1 of one class.
#[derive(Serialize)]
struct ClassMetrics {
    class: String,
    precision: f64,
    recall: f64,
    f1: f64,
    support: usize,
}

/// The `--json` report: field names are a contract.
#[derive(Serialize)]
struct Report {
    samples: usize,
    task: &'static str,
    loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_class: Option<Vec<ClassMetrics>>,
    /// Rows: true class; columns: predicted class (up to [`MAX_LISTED_CLASSES`] classes).
    #[serde(skip_serializing_if = "Option::is_none")]
    confusion_matrix: Option<Vec<Vec<usize>>>,
    /// Beyond [`MAX_LISTED_CLASSES`] classes: the non-zero cells as `[true, predicted, count]`,
    /// largest first (at most one per row, where the dense matrix would grow as classes²).
    #[serde(skip_serializing_if = "Option::is_none")]
    confusion_pairs: Option<Vec<(String, String, usize)>>,
    /// How many classes the model has (`classes` and `per_class` list them all up to
    /// [`MAX_LISTED_CLASSES`]; beyond, `per_class` lists the classes that occur).
    #[serde(skip_serializing_if = "Option::is_none")]
    class_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mae: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rmse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r2: Option<f64>,
}

/// Classes beyond which the confusion matrix is summarised: the table shows the classes with
/// the most errors and the most-confused pairs, the JSON the non-zero cells and the classes
/// that occur (a 5,000-class matrix would print 25 million counts).
const MAX_LISTED_CLASSES: usize = 30;

/// Output values (rows × classes) one batch may hold: 16 MB of f32.
const MAX_BATCH_OUTPUTS: usize = 1 << 22;

/// Classes and pairs the summary table shows.
const SUMMARY_LINES: usize = 20;

/// Runs `nabla evaluate`.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let model = Model::new(
        super::model_path::load_to_run(&args.model)
            .context("loading the model")?
            .1,
    );
    let (rows, targets) = read_labelled(&args.data, &model)?;
    let report = match targets {
        Targets::Classes(labels) => classification(&model, &rows, &labels)?,
        Targets::Values(ys) => regression(&model, &predict_all(&model, &rows)?, &ys),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    write_report(&mut out, &report, &args.data)?;
    Ok(())
}

/// Reads `data` for `model`: its rows and their targets; data without the target column, or
/// without rows, is refused.
fn read_labelled(data: &Path, model: &Model) -> Result<(Rows, Targets)> {
    let rows =
        nabla::io::input::read(data, &model.file().preprocess).context("reading the data")?;
    for w in &rows.warnings {
        eprintln!("warning: {w}");
    }
    let targets = rows.targets.clone().ok_or_else(|| {
        nabla::NablaError::data(
            data,
            "header",
            format!(
                "no target column {:?}: evaluation needs labels (use nabla predict for unlabelled rows)",
                model.file().preprocess.target.name
            ),
        )
    })?;
    if rows.rows == 0 {
        anyhow::bail!(nabla::NablaError::data(data, "file", "no rows to evaluate"));
    }
    Ok((rows, targets))
}

/// The model's outputs for every row (a regression's predicted values).
fn predict_all(model: &Model, rows: &Rows) -> Result<Vec<f32>> {
    let mut predictions = Vec::with_capacity(rows.rows * model.outputs());
    each_batch(model, rows, |out| predictions.extend_from_slice(out))?;
    Ok(predictions)
}

/// Runs the model on `rows`, `BATCH` rows at a time, handing each batch's outputs
/// (probabilities per class, or the predicted value) to `f`: a many-class model's outputs are
/// never all held at once.
fn each_batch(model: &Model, rows: &Rows, mut f: impl FnMut(&[f32])) -> Result<()> {
    let width = model.spec().inputs.max(1);
    // Fewer rows at a time for many outputs: 256 rows of 100,000 probabilities are 100 MB.
    let batch = BATCH.min(MAX_BATCH_OUTPUTS / model.outputs().max(1)).max(1);
    let mut scratch = nabla::io::Scratch::new();
    for chunk in rows.values.chunks(batch * width) {
        f(model.predict_into(chunk, chunk.len() / width, &mut scratch)?);
    }
    Ok(())
}

/// Counts of (true, predicted) classes: only the cells that occur (at most one per row), and
/// per class its support, its predictions and its correct predictions.
struct Confusion {
    cells: BTreeMap<(usize, usize), usize>,
    support: Vec<usize>,
    predicted: Vec<usize>,
    correct: Vec<usize>,
}

impl Confusion {
    fn new(k: usize) -> Self {
        Self {
            cells: BTreeMap::new(),
            support: vec![0; k],
            predicted: vec![0; k],
            correct: vec![0; k],
        }
    }

    fn add(&mut self, truth: usize, pred: usize) {
        *self.cells.entry((truth, pred)).or_insert(0) += 1;
        self.support[truth] += 1;
        self.predicted[pred] += 1;
        if truth == pred {
            self.correct[truth] += 1;
        }
    }

    /// The dense `[true][predicted]` matrix (for a readable class count only).
    fn dense(&self) -> Vec<Vec<usize>> {
        let k = self.support.len();
        let mut m = vec![vec![0; k]; k];
        for (&(t, p), &n) in &self.cells {
            m[t][p] = n;
        }
        m
    }

    /// The non-zero cells, largest count first.
    fn pairs(&self, names: &[String]) -> Vec<(String, String, usize)> {
        let mut cells: Vec<_> = self.cells.iter().collect();
        cells.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let name = |c: usize| names.get(c).cloned().unwrap_or_default();
        cells
            .into_iter()
            .map(|(&(t, p), &n)| (name(t), name(p), n))
            .collect()
    }
}

/// Cross-entropy, accuracy, per-class metrics and the confusion matrix (or, beyond
/// [`MAX_LISTED_CLASSES`], its non-zero cells) of the model on `rows` against `labels`.
fn classification(model: &Model, rows: &Rows, labels: &[u32]) -> Result<Report> {
    let k = model.outputs().max(1);
    let n = labels.len();
    if let Some((row, &l)) = labels.iter().enumerate().find(|&(_, &l)| l as usize >= k) {
        anyhow::bail!(
            "row {row}'s label {l} is not one of the model's {k} classes (0 to {})",
            k - 1
        );
    }
    let mut confusion = Confusion::new(k);
    let mut loss = 0.0f64;
    let mut labels_left = labels.iter();
    each_batch(model, rows, |out| {
        for (p, &l) in out.chunks_exact(k).zip(labels_left.by_ref()) {
            let truth = l as usize;
            confusion.add(truth, nabla::kernels::softmax::argmax(p));
            loss -= f64::from(p[truth].max(f32::MIN_POSITIVE)).ln();
        }
    })?;
    let correct: usize = confusion.correct.iter().sum();
    let classes = model.classes().to_vec();
    let listed = k <= MAX_LISTED_CLASSES;
    let per_class = (0..k)
        .filter(|&c| listed || confusion.support[c] + confusion.predicted[c] > 0)
        .map(|c| class_metrics(&confusion, c, classes.get(c).cloned().unwrap_or_default()))
        .collect();
    Ok(Report {
        samples: n,
        task: "classification",
        loss: loss / n as f64,
        accuracy: Some(correct as f64 / n as f64),
        per_class: Some(per_class),
        confusion_matrix: listed.then(|| confusion.dense()),
        confusion_pairs: (!listed).then(|| confusion.pairs(&classes)),
        class_count: Some(k),
        classes: listed.then_some(classes),
        mae: None,
        rmse: None,
        r2: None,
    })
}

/// Precision, recall and F1 of class `c` (0 when undefined).
fn class_metrics(confusion: &Confusion, c: usize, class: String) -> ClassMetrics {
    let tp = confusion.correct[c] as f64;
    let (predicted, support) = (confusion.predicted[c], confusion.support[c]);
    let ratio = |count: usize| if count > 0 { tp / count as f64 } else { 0.0 };
    let (precision, recall) = (ratio(predicted), ratio(support));
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    ClassMetrics {
        class,
        precision,
        recall,
        f1,
        support,
    }
}

/// MAE, RMSE and R² in the target's own units, and the loss in the model's standardised units
/// (as training reports it).
fn regression(model: &Model, predictions: &[f32], ys: &[f64]) -> Report {
    let n = ys.len();
    let scale = model.file().preprocess.target.scale;
    let mean = ys.iter().sum::<f64>() / n as f64;
    let (mut sae, mut sse, mut sst) = (0.0f64, 0.0f64, 0.0f64);
    for (&p, &y) in predictions.iter().zip(ys) {
        let e = f64::from(p) - y;
        sae += e.abs();
        sse += e * e;
        sst += (y - mean) * (y - mean);
    }
    Report {
        samples: n,
        task: "regression",
        loss: sse / n as f64 / (scale * scale),
        accuracy: None,
        per_class: None,
        confusion_matrix: None,
        confusion_pairs: None,
        class_count: None,
        classes: None,
        mae: Some(sae / n as f64),
        rmse: Some((sse / n as f64).sqrt()),
        r2: Some(if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN }),
    }
}

/// The report as a table: loss, then accuracy, per-class metrics and the confusion matrix (or
/// its summary beyond [`MAX_LISTED_CLASSES`]), or MAE, RMSE and R².
fn write_report(out: &mut impl Write, report: &Report, data: &Path) -> std::io::Result<()> {
    writeln!(out, "{} samples from {}", report.samples, data.display())?;
    writeln!(out, "loss {:.4}", report.loss)?;
    if let (Some(a), Some(pc)) = (report.accuracy, &report.per_class) {
        writeln!(out, "accuracy {a:.4}")?;
        match (&report.confusion_matrix, &report.confusion_pairs) {
            (Some(cm), _) => write_matrix(out, pc, cm)?,
            (None, Some(pairs)) => write_summary(out, report, pc, pairs)?,
            (None, None) => {}
        }
    }
    if let (Some(mae), Some(rmse), Some(r2)) = (report.mae, report.rmse, report.r2) {
        writeln!(out, "MAE {mae:.4}  RMSE {rmse:.4}  R² {r2:.4}")?;
    }
    Ok(())
}

/// One line per class of `pc`: precision, recall, F1 and support, under a heading.
fn write_class_table<'a>(
    out: &mut impl Write,
    pc: impl IntoIterator<Item = &'a ClassMetrics>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<12} {:>9} {:>9} {:>9} {:>8}",
        "class", "precision", "recall", "f1", "support"
    )?;
    for c in pc {
        writeln!(
            out,
            "{:<12} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            c.class, c.precision, c.recall, c.f1, c.support
        )?;
    }
    Ok(())
}

/// Every class's metrics and the whole confusion matrix.
fn write_matrix(
    out: &mut impl Write,
    pc: &[ClassMetrics],
    cm: &[Vec<usize>],
) -> std::io::Result<()> {
    write_class_table(out, pc)?;
    writeln!(
        out,
        "confusion matrix (rows: true class, columns: predicted):"
    )?;
    let names: Vec<&str> = pc.iter().map(|c| c.class.as_str()).collect();
    for line in confusion_lines(&names, cm) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Too many classes for a matrix: the classes with the most errors and the most-confused
/// pairs, [`SUMMARY_LINES`] of each.
fn write_summary(
    out: &mut impl Write,
    report: &Report,
    pc: &[ClassMetrics],
    pairs: &[(String, String, usize)],
) -> std::io::Result<()> {
    let errors = |c: &ClassMetrics| c.support - (c.recall * c.support as f64).round() as usize;
    let mut worst: Vec<&ClassMetrics> = pc.iter().filter(|c| errors(c) > 0).collect();
    worst.sort_by(|a, b| errors(b).cmp(&errors(a)).then(b.support.cmp(&a.support)));
    worst.truncate(SUMMARY_LINES);
    writeln!(
        out,
        "{} classes: too many for a matrix; nabla evaluate --json gives every class that occurs \
         and every non-zero cell of the confusion matrix as [true, predicted, count]",
        report.class_count.unwrap_or(pc.len())
    )?;
    writeln!(
        out,
        "the {} classes with the most errors (of {} that occur in the rows or the predictions):",
        worst.len(),
        pc.len()
    )?;
    write_class_table(out, worst)?;
    let confused: Vec<_> = pairs.iter().filter(|(t, p, _)| t != p).collect();
    writeln!(
        out,
        "most-confused pairs (true → predicted: count), the {} largest of {}:",
        confused.len().min(SUMMARY_LINES),
        confused.len()
    )?;
    for (t, p, n) in confused.into_iter().take(SUMMARY_LINES) {
        writeln!(out, "  {t} → {p}: {n}")?;
    }
    Ok(())
}

/// The confusion matrix as text: a heading row of predicted classes over the columns, one row
/// per true class. Every column is as wide as its heading or its widest count.
fn confusion_lines(names: &[&str], cm: &[Vec<usize>]) -> Vec<String> {
    let corner = "true \\ predicted";
    let first = names
        .iter()
        .map(|n| n.chars().count())
        .chain([corner.chars().count()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..names.len())
        .map(|c| {
            let widest = cm.iter().map(|r| r[c].to_string().len()).max().unwrap_or(1);
            names[c].chars().count().max(widest)
        })
        .collect();
    let heading: Vec<String> = names
        .iter()
        .zip(&widths)
        .map(|(n, &w)| format!("{n:>w$}"))
        .collect();
    let mut lines = vec![format!("{corner:<first$}  {}", heading.join("  "))];
    for (name, row) in names.iter().zip(cm) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, &w)| format!("{v:>w$}"))
            .collect();
        lines.push(format!("{name:<first$}  {}", cells.join("  ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::confusion_lines;

    #[test]
    fn confusion_matrix_has_column_headings() {
        let lines = confusion_lines(
            &["setosa", "versicolor", "virginica"],
            &[vec![10, 0, 0], vec![0, 9, 1], vec![0, 2, 8]],
        );
        assert_eq!(lines[0], "true \\ predicted  setosa  versicolor  virginica");
        assert_eq!(lines[2], "versicolor             0           9          1");
        // Every row is as long as the heading, so the counts sit under their class names.
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count())
        );
    }
}
