//! `nabla inspect`: what a model file holds: architecture, parameters per layer, training
//! settings, classes, inputs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Flags of `nabla inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file (from `nabla train --save`), or a run folder holding model.safetensors.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
}

/// Runs `nabla inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let (path, file) = super::model_path::load(&args.model).context("loading the model")?;
    let spec = file.network.spec();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "model: {} (format nabla {})",
        path.display(),
        nabla::io::model_file::format_version(spec)
    )?;
    writeln!(out, "task: {}", spec.task.name())?;
    match spec.input_shape {
        Some(image) => writeln!(out, "inputs: {} (images {image})", spec.inputs)?,
        None => writeln!(out, "inputs: {}", spec.inputs)?,
    }
    writeln!(out, "layers:")?;
    let mut total = 0usize;
    for (i, layer) in spec.layers.iter().enumerate() {
        let (desc, params) = (layer.summary(), layer.parameters());
        total += params;
        writeln!(out, "  {i:>2}  {desc:<40} {params:>10} parameters")?;
    }
    writeln!(out, "parameters: {total}")?;
    writeln!(out, "summary:")?;
    for line in nabla::nn::summary::table(spec)?.lines() {
        writeln!(out, "  {line}")?;
    }
    if !spec.classes.is_empty() {
        writeln!(
            out,
            "classes ({}): {}",
            spec.classes.len(),
            class_list(&spec.classes)
        )?;
    }
    let p = &file.preprocess;
    let shown: Vec<&str> = p.features.iter().take(8).map(String::as_str).collect();
    writeln!(
        out,
        "input features ({}, scaling {}): {}{}",
        p.features.len(),
        p.scaling.name(),
        shown.join(", "),
        if p.features.len() > 8 { ", ..." } else { "" }
    )?;
    writeln!(out, "target: {}", p.target.name)?;
    writeln!(out, "training settings:")?;
    match &file.training {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                writeln!(out, "  {k}: {v}")?;
            }
        }
        other => writeln!(out, "  {other}")?,
    }
    Ok(())
}

/// Classes beyond which `inspect` lists only the first ones (a 5,000-class model would print
/// every name on one line).
const LISTED_CLASSES: usize = 30;

/// The class names, comma-separated; beyond [`LISTED_CLASSES`], the first of them and how many
/// more there are.
fn class_list(classes: &[String]) -> String {
    let shown = classes[..classes.len().min(LISTED_CLASSES)].join(", ");
    match classes.len().checked_sub(LISTED_CLASSES) {
        Some(more) if more > 0 => format!("{shown}, … ({more} more)"),
        _ => shown,
    }
}
