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

    /// Replace an existing --out file that is not an ONNX model exported by nabla (without
    /// it, such a file is refused).
    #[arg(long)]
    pub overwrite: bool,
}

/// Formats `nabla export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (opset 17 with ai.onnx.ml 3): preprocessing, network and softmax in one graph.
    Onnx,
}

/// Runs `nabla export`.
pub fn run(args: ExportArgs) -> Result<()> {
    // Pre-flight: --out can be written, is not the model (through links) nor another kind of file.
    let inputs = super::outputs::input_files(std::slice::from_ref(&args.model));
    super::outputs::check_output_file(&args.out, &inputs)?;
    let kind = super::outputs::Kind::Onnx;
    super::outputs::same_kind(&args.out, "--out", kind, args.overwrite)?;
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
