//! `nabla export`: a saved model in another format for other runtimes (ONNX).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

/// Flags of `nabla export`.
#[derive(Debug, Args)]
#[command(
    after_help = "The ONNX graph takes the raw columns and gives what `nabla predict` gives:\n  inputs   `numeric` float [N, n] (the numeric columns, in the order of metadata\n           `numeric_columns`; NaN = missing), and one string input [N, 1] per categorical\n           column, named after it (\"\" = missing)\n  outputs  `probabilities` float [N, classes] (class names in metadata `classes`), or\n           `value` float [N, 1] in the target's units for regression\n  opsets   ai.onnx 17, ai.onnx.ml 3 (OneHotEncoder)\n\nExample:\n  nabla export --model runs/first-try/model.safetensors --format onnx --out model.onnx"
)]
pub struct ExportArgs {
    /// The model file (from `nabla train --save`), or a run folder (its model.safetensors).
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// The format to write.
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    pub format: Format,

    /// Where to write the exported model (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Formats `nabla export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (opset 17 with ai.onnx.ml 3): preprocessing, network and softmax in one graph.
    Onnx,
}

/// Runs `nabla export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let (_, file) = super::model_path::load(&args.model).context("loading the model")?;
    match args.format {
        Format::Onnx => nabla::io::onnx::save(&args.out, &file).context("exporting to ONNX")?,
    }
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({} bytes, ONNX opset {} + ai.onnx.ml {})",
        args.out.display(),
        size,
        nabla::io::onnx::OPSET,
        nabla::io::onnx::ML_OPSET
    );
    Ok(())
}
