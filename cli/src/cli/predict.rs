//! `nabla predict`: a saved model's predictions for new rows, as CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use nabla::io::Model;
use nabla::nn::Task;

/// Flags of `nabla predict`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla predict --model model.safetensors --data new.csv\n  nabla predict --model mnist.safetensors --data t10k-images-idx3-ubyte --out predictions.csv"
)]
pub struct PredictArgs {
    /// The model file (from `nabla train --save`), or a run folder holding model.safetensors.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// Rows to predict: a CSV file whose columns are matched by name to the model's inputs (a
    /// target column is ignored), an IDX images file, or a folder of IDX files (its t10k images).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,

    /// Write the CSV here instead of standard output (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Replace an existing --out file that is not a predictions CSV (without it, such a file
    /// is refused).
    #[arg(long)]
    pub overwrite: bool,
}

/// Predicts every row of `data` in batches of this many rows.
pub(crate) const BATCH: usize = 256;

/// Runs `nabla predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    if let Some(out) = &args.out {
        let inputs = super::outputs::input_files(&[args.model.clone(), args.data.clone()]);
        super::outputs::check_output_file(out, &inputs)?;
        let kind = super::outputs::Kind::Predictions;
        super::outputs::same_kind(out, "--out", kind, args.overwrite)?;
    }
    let (_, file) = super::model_path::load_to_run(&args.model).context("loading the model")?;
    let model = Model::new(file);
    let rows = nabla::io::input::read_inputs(&args.data, &model.file().preprocess)
        .context("reading the data")?;
    for w in &rows.warnings {
        eprintln!("warning: {w}");
    }
    let classes = model.classes().to_vec();
    let regression = model.spec().task == Task::Regression;
    let width = model.spec().inputs;
    let outputs = model.outputs();
    let mut csv = String::new();
    csv.push_str("prediction");
    if !regression {
        for c in &classes {
            // The whole field is quoted (`"p_big, red"`), never a part of it.
            csv.push(',');
            csv.push_str(&quote(&format!("p_{c}")));
        }
    }
    csv.push('\n');
    let mut scratch = nabla::io::Scratch::new();
    for chunk in rows.values.chunks(BATCH * width.max(1)) {
        let n = chunk.len() / width.max(1);
        let out = model.predict_into(chunk, n, &mut scratch)?;
        for row in out.chunks_exact(outputs) {
            if regression {
                csv.push_str(&format!("{}\n", row[0]));
            } else {
                let best = nabla::kernels::softmax::argmax(row);
                csv.push_str(&quote(&classes[best]));
                for p in row {
                    csv.push_str(&format!(",{p}"));
                }
                csv.push('\n');
            }
        }
    }
    match &args.out {
        Some(path) => {
            nabla::io::write_atomic(path, csv.as_bytes()).context("writing the predictions")?;
            eprintln!("wrote {} predictions to {}", rows.rows, path.display());
        }
        None => std::io::stdout().lock().write_all(csv.as_bytes())?,
    }
    Ok(())
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
