//! `nabla evaluate`: a saved model's quality on labelled data: loss, accuracy, per-class
//! precision/recall/F1 and the confusion matrix (classification), or MAE, RMSE and R²
//! (regression).

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
    /// Rows: true class; columns: predicted class.
    #[serde(skip_serializing_if = "Option::is_none")]
    confusion_matrix: Option<Vec<Vec<usize>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mae: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rmse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r2: Option<f64>,
}

/// Runs `nabla evaluate`.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let model = Model::new(
        super::model_path::load_to_run(&args.model)
            .context("loading the model")?
            .1,
    );
    let (rows, targets) = read_labelled(&args.data, &model)?;
    let predictions = predict_all(&model, &rows)?;
    let report = match targets {
        Targets::Classes(labels) => classification(&model, &predictions, &labels),
        Targets::Values(ys) => regression(&model, &predictions, &ys),
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

/// The model's outputs for every row, `BATCH` rows at a time: probabilities per class, or the
/// predicted value.
fn predict_all(model: &Model, rows: &Rows) -> Result<Vec<f32>> {
    let width = model.spec().inputs.max(1);
    let mut predictions = Vec::with_capacity(rows.rows * model.outputs());
    let mut scratch = nabla::io::Scratch::new();
    for chunk in rows.values.chunks(BATCH * width) {
        predictions.extend_from_slice(model.predict_into(
            chunk,
            chunk.len() / width,
            &mut scratch,
        )?);
    }
    Ok(predictions)
}

/// Cross-entropy, accuracy, per-class metrics and the confusion matrix of class
/// `predictions` (one row of probabilities per sample) against `labels`.
fn classification(model: &Model, predictions: &[f32], labels: &[u32]) -> Report {
    let k = model.outputs();
    let n = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss = 0.0f64;
    for (p, &l) in predictions.chunks_exact(k).zip(labels) {
        let pred = nabla::kernels::softmax::argmax(p);
        confusion[l as usize][pred] += 1;
        loss -= f64::from(p[l as usize].max(f32::MIN_POSITIVE)).ln();
    }
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let classes = model.classes().to_vec();
    let per_class = (0..k)
        .map(|c| class_metrics(&confusion, c, classes.get(c).cloned().unwrap_or_default()))
        .collect();
    Report {
        samples: n,
        task: "classification",
        loss: loss / n as f64,
        accuracy: Some(correct as f64 / n as f64),
        per_class: Some(per_class),
        confusion_matrix: Some(confusion),
        classes: Some(classes),
        mae: None,
        rmse: None,
        r2: None,
    }
}

/// Precision, recall and F1 of class `c` from `confusion[true][predicted]` (0 when undefined).
fn class_metrics(confusion: &[Vec<usize>], c: usize, class: String) -> ClassMetrics {
    let tp = confusion[c][c] as f64;
    let predicted: usize = confusion.iter().map(|row| row[c]).sum();
    let support: usize = confusion[c].iter().sum();
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
        classes: None,
        mae: Some(sae / n as f64),
        rmse: Some((sse / n as f64).sqrt()),
        r2: Some(if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN }),
    }
}

/// The report as a table: loss, then accuracy, per-class metrics and the confusion matrix, or
/// MAE, RMSE and R².
fn write_report(out: &mut impl Write, report: &Report, data: &Path) -> std::io::Result<()> {
    writeln!(out, "{} samples from {}", report.samples, data.display())?;
    writeln!(out, "loss {:.4}", report.loss)?;
    if let (Some(a), Some(pc), Some(cm)) =
        (report.accuracy, &report.per_class, &report.confusion_matrix)
    {
        writeln!(out, "accuracy {a:.4}")?;
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
        writeln!(
            out,
            "confusion matrix (rows: true class, columns: predicted):"
        )?;
        let names: Vec<&str> = pc.iter().map(|c| c.class.as_str()).collect();
        for line in confusion_lines(&names, cm) {
            writeln!(out, "{line}")?;
        }
    }
    if let (Some(mae), Some(rmse), Some(r2)) = (report.mae, report.rmse, report.r2) {
        writeln!(out, "MAE {mae:.4}  RMSE {rmse:.4}  R² {r2:.4}")?;
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
