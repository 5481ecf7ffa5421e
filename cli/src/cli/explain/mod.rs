//! `nabla explain`: one training step walked through by hand on the engine's own numbers (see
//! `nabla::explain`), for the classic 3-2-2 network ([`tiny`]) or a trained model file
//! ([`model`]). These files only choose the subject and say what to show of its numbers; [`doc`]
//! writes that as text or markdown.

mod conv;
mod doc;
mod model;
mod tiny;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::parse_positive;

/// Output formats of `nabla explain`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum Format {
    /// Plain text for the terminal.
    Text,
    /// Markdown (headings, tables) for teaching material.
    Markdown,
    /// Machine-readable JSON: `{"weights": [{"name", "gradient", "numeric_gradient", ...}], ...}`.
    Json,
}

impl Format {
    /// How text and markdown are written; `None` for JSON, which is serialised, not rendered.
    fn markup(self) -> Option<doc::Markup> {
        match self {
            Format::Text => Some(doc::Markup::Text),
            Format::Markdown => Some(doc::Markup::Markdown),
            Format::Json => None,
        }
    }
}

/// Flags of `nabla explain`.
#[derive(Debug, Args)]
#[command(
    after_help = "The default network: 3 inputs → 2 sigmoid hidden units → 2 softmax outputs,\n\
z_h1 = w1·x1 + w3·x2 + w5·x3 + b1, z_h2 = w2·x1 + w4·x2 + w6·x3 + b2,\n\
z_o1 = w7·h1 + w9·h2 + b3,        z_o2 = w8·h1 + w10·h2 + b4;\n\
sample x = (0.5, 0.1, 0.9) of class 1.\n\n\
With --model, a trained model's step on one sample of its data: z1 = W1·x + b1, h1 = f(z1), ...,\n\
a few units per layer and terms per sum (--limit), weights named W1[unit,input] / b1[unit]\n\
(in the model file: layers.0.weight[unit,input]). On a network with convolution layers: one\n\
convolution weight W[o,i,ky,kx] (--weight layers.N.weight[o,i,ky,kx]; default: the first\n\
convolution's largest gradient) as Σ over output positions of input patch value × ∂L/∂output,\n\
beside the engine's gradient and a finite difference, and a max-pooling window passing its\n\
gradient to the arg-max.\n\n\
Examples:\n  nabla explain\n  nabla explain --weight w1\n  nabla explain --format markdown > backprop.md\n  nabla explain --format json --lr 0.1\n  nabla explain --model runs/first-try/model.safetensors --sample 5\n  nabla explain --model mnist.safetensors --data ../shared/datasets/mnist --sample 0 --weight 'W2[3,17]'"
)]
pub struct ExplainArgs {
    /// The weight or bias whose full chain rule is shown factor by factor: w1..w10, b1..b4 for
    /// the tiny network; W1[j,i] or b1[j] (or layers.0.weight[j,i]) with --model; a
    /// convolution's layers.N.weight[o,i,ky,kx] with a CNN model [default: w7; with --model,
    /// the first weight shown in W1; with a CNN, the first convolution's largest gradient].
    #[arg(long, value_name = "NAME")]
    pub weight: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Learning rate of the SGD update W ← W − lr·∂L/∂W [default: 0.5; with --model, the
    /// model's training learning rate].
    #[arg(long, value_parser = parse_positive)]
    pub lr: Option<f64>,

    /// Step ε of the central finite difference (L(w+ε) − L(w−ε)) / 2ε.
    #[arg(long, default_value_t = 1e-2, value_parser = parse_positive)]
    pub epsilon: f64,

    /// Explain a trained model file (from `nabla train`, e.g. runs/NAME/model.safetensors)
    /// instead of the tiny network.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// With --model: which sample of the data to explain, counting rows from 0 [default: 0].
    #[arg(long, value_name = "K")]
    pub sample: Option<usize>,

    /// With --model: labelled data to take the sample from: a CSV file with the model's columns
    /// and target, or an IDX folder (its t10k test set) [default: the data the model was
    /// trained on, when that is the built-in digits or a path that still exists].
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,

    /// With --model: units shown per layer and terms shown per sum; the rest are summed up.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub limit: u16,
}

/// Runs `nabla explain`.
pub fn run(args: ExplainArgs) -> Result<()> {
    if args.model.is_none() {
        let needs_model = [
            ("--sample", args.sample.is_some()),
            ("--data", args.data.is_some()),
        ];
        if let Some((flag, _)) = needs_model.iter().find(|(_, given)| *given) {
            return Err(nabla::NablaError::Usage(format!(
                "{flag} picks a sample of a trained model's data: it needs --model FILE"
            ))
            .into());
        }
        return tiny::run(&args);
    }
    model::run(&args)
}

/// One factor of a chain rule (`∂z_o1/∂w7 = h1 = 0.6682`), or one term of a sum.
#[derive(Debug, Serialize)]
struct Factor {
    name: String,
    formula: String,
    value: f64,
}

/// `0.1500` with negative numbers parenthesised, for products written out: `(−0.2500)·0.5000`.
/// Values too small for four decimals keep four significant digits: `2.090e-4`.
fn num(v: f32) -> String {
    let s = short(v);
    if v < 0.0 { format!("({s})") } else { s }
}

/// Four decimals, or four significant digits for values under 0.001 (`-2.090e-4`); 0 is `0.0000`.
fn short(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-3 && v.is_finite() {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// Six decimals, or five significant digits for values under 0.001 (gradients of confident
/// predictions are small): `-3.2454e-7`.
fn precise(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 && v.is_finite() {
        format!("{v:.4e}")
    } else {
        format!("{v:.6}")
    }
}
