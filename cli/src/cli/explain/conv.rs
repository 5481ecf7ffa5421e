//! `nabla explain --model M` for a model with image layers: the traced step of
//! `nabla::explain::explain_conv` — the layers, one convolution weight's gradient as input
//! patch values × upstream gradients summed over the output positions, and a max-pooling
//! window passing its gradient to the arg-max — as text, markdown or JSON.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use nabla::explain::conv::{ConvTerm, ConvWeight, PoolWindow};
use nabla::explain::{ConvTrace, ConvWeightRef, Target, explain_conv};
use nabla::io::ModelFile;

use super::doc::{Doc, Markup};
use super::model::{Sample, tensor_table};
use super::{ExplainArgs, num, precise, short};

/// Runs `nabla explain --model` on a convolutional network, for the sample already read.
pub(super) fn run(
    args: &ExplainArgs,
    path: &Path,
    file: &ModelFile,
    sample: &Sample,
    (x, target): (&[f32], Target),
) -> Result<()> {
    let also = args
        .weight
        .as_deref()
        .map(|w| ConvWeightRef::parse(&file.network, w))
        .transpose()?;
    let limit = usize::from(args.limit);
    let trace = explain_conv(&file.network, x, target, limit, also, args.epsilon as f32)?;
    let out = match args.format.markup() {
        None => json(path, sample, &trace)?,
        Some(markup) => render(markup, path, sample, &trace, limit),
    };
    crate::cli::print(&out)?;
    Ok(())
}

/// The `--format json` object: the trace with the model and the sample.
fn json(path: &Path, sample: &Sample, trace: &ConvTrace) -> Result<String> {
    #[derive(Serialize)]
    struct Json<'a> {
        model: String,
        data: &'a str,
        sample: usize,
        truth: &'a str,
        #[serde(flatten)]
        trace: &'a ConvTrace,
    }
    let json = serde_json::to_string_pretty(&Json {
        model: path.display().to_string(),
        data: &sample.source,
        sample: sample.row,
        truth: &sample.truth,
        trace,
    })?;
    Ok(json + "\n")
}

/// The walk-through as text or markdown.
fn render(markup: Markup, path: &Path, sample: &Sample, t: &ConvTrace, limit: usize) -> String {
    let mut doc = Doc::new(markup);
    doc.title(
        "Backpropagation by hand: one training step of a convolutional network",
        "nabla explain — one training step of a convolutional network, every number from the engine's tape",
    );
    doc.lines(&[
        format!("Model:   {}", path.display()),
        format!(
            "Sample:  row {} of the {} in {}, {}; x = the image after the model's preprocessing",
            sample.row, sample.rows, sample.source, sample.truth
        ),
        format!(
            "Shown:   the {limit} largest terms of each sum (--limit); the rest are summed up. \
             Dropout is off and batch norm uses its running statistics, as in evaluation."
        ),
    ]);
    doc.heading("1. Forward pass, layer by layer");
    doc.equations(&forward_lines(t));
    let w = &t.weight;
    doc.heading(&format!(
        "2. The gradient of one convolution weight: {}",
        w.param
    ));
    doc.equations(&weight_lines(w, t.epsilon));
    if let Some(p) = &t.pool {
        doc.heading("3. Max pooling passes the gradient to the arg-max");
        doc.equations(&pool_lines(p));
    }
    doc.table(&tensor_table(&t.tensors));
    doc.finish()
}

/// Every layer's output shape and gradient size, then the prediction and the loss.
fn forward_lines(t: &ConvTrace) -> Vec<String> {
    let width = t
        .layers
        .iter()
        .map(|l| l.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<String> = t
        .layers
        .iter()
        .map(|l| {
            format!(
                "layers.{:<2} {:<width$}  → {:<10} ‖∂L/∂output‖ = {}",
                l.layer,
                l.name,
                l.shape,
                precise(l.gradient_norm)
            )
        })
        .collect();
    match (t.target, &t.probabilities) {
        (Target::Class(y), Some(p)) => {
            let best = nabla::kernels::softmax::argmax(p);
            lines.push(format!(
                "p = softmax(scores): predicted class index {best} (p = {:.4}); true class index {y} (p = {:.4})",
                p[best], p[y]
            ));
            lines.push(format!("L = −log p[{y}] = {}", precise(f64::from(t.loss))));
        }
        _ => lines.push(format!("L = (ŷ − y)² = {}", precise(f64::from(t.loss)))),
    }
    lines
}

/// `a[i, p·s + ky·d − pad, q·s + kx·d − pad]` for this weight, with its numbers filled in.
fn tap(w: &ConvWeight, axis: &str, k: usize) -> String {
    let mut s = axis.to_string();
    if w.stride != 1 {
        s = format!("{}·{axis}", w.stride);
    }
    let offset = (k * w.dilation) as i64 - w.padding as i64;
    match offset {
        0 => s,
        o if o > 0 => format!("{s}+{o}"),
        o => format!("{s}−{}", -o),
    }
}

/// The weight's gradient: the formula, the largest terms, the rest, the engine's value and the
/// finite difference.
fn weight_lines(w: &ConvWeight, epsilon: f32) -> Vec<String> {
    let [o, i, ky, kx] = w.index;
    let [c_in, h_in, w_in] = w.input_shape;
    let [c_out, h_out, w_out] = w.output_shape;
    let a = if w.reads_input { "x" } else { "a" };
    let source = if w.reads_input {
        "x is the network's input".to_string()
    } else {
        format!("a is the output of layers.{}", w.layer - 1)
    };
    let at = format!("{a}[{i},{},{}]", tap(w, "p", ky), tap(w, "q", kx));
    let mut lines = vec![
        format!(
            "c = layers.{}({a}) is a convolution (stride {}, padding {}, dilation {}): {source} \
             ({c_in}×{h_in}×{w_in}), c is {c_out}×{h_out}×{w_out}.",
            w.layer, w.stride, w.padding, w.dilation
        ),
        format!(
            "W[{o},{i},{ky},{kx}] = {} multiplies {at} into c[{o},p,q] at every output position (p, q), so",
            short(w.value)
        ),
        format!(
            "∂L/∂W[{o},{i},{ky},{kx}] = Σ over the {} positions (p, q) of {at} · ∂L/∂c[{o},p,q]",
            w.positions
        ),
    ];
    for term in &w.terms {
        lines.push(term_line(a, i, o, term));
    }
    let shown = w.terms.len();
    let others = w.positions - w.padding_terms - shown;
    if others > 0 {
        lines.push(format!(
            "    + {others} smaller terms = {}",
            precise(w.rest)
        ));
    }
    if w.padding_terms > 0 {
        lines.push(format!(
            "    ({} positions read the zero padding: their terms are 0)",
            w.padding_terms
        ));
    }
    lines.push(format!(
        "    ({} of the {} terms have ∂L/∂c[{o},p,q] = 0: a ReLU that is off, or a max pool that did not pick the position, passes no gradient back)",
        w.zero_upstream,
        w.positions - w.padding_terms
    ));
    lines.push(format!(
        "∂L/∂W[{o},{i},{ky},{kx}] = {}   (engine's backward pass: {}; it computes all {} weights at once as one matrix product of the patches)",
        precise(w.sum),
        precise(f64::from(w.gradient)),
        c_out * c_in * w.kernel * w.kernel
    ));
    lines.push(finite_difference_line(w, epsilon));
    lines
}

/// The finite difference, and when the requested `epsilon` crossed a kink, what it gave and why
/// a smaller step is shown.
fn finite_difference_line(w: &ConvWeight, epsilon: f32) -> String {
    let line = format!(
        "finite difference: (L(W+ε) − L(W−ε)) / 2ε gives {}",
        precise(w.numeric_gradient)
    );
    match w.kinked_numeric_gradient {
        None => line,
        Some(first) => format!(
            "{line} with ε = {} (ε = {} gave {}: that step crosses a kink of L, a ReLU \
             switching or a max pool changing its pick, so ε was shrunk until two steps agreed)",
            step(w.numeric_epsilon),
            step(epsilon),
            precise(first)
        ),
    }
}

/// A finite-difference step to 6 significant digits: the f32 nearest 0.001 reads 0.001, not
/// 0.0009999999.
fn step(epsilon: f32) -> f64 {
    format!("{epsilon:.5e}")
        .parse()
        .unwrap_or(f64::from(epsilon))
}

/// `    x[0,3,4] · ∂L/∂c[2,3,4] = 0.5000 · (−0.0123) = −0.006150`.
fn term_line(a: &str, i: usize, o: usize, t: &ConvTerm) -> String {
    let [p, q] = t.output;
    let [iy, ix] = t.input;
    format!(
        "    {a}[{i},{iy},{ix}] · ∂L/∂c[{o},{p},{q}] = {} · {} = {}",
        num(t.value),
        num(t.upstream),
        precise(t.product)
    )
}

/// The window: every cell's value and gradient, the arg-max marked.
fn pool_lines(p: &PoolWindow) -> Vec<String> {
    let [oy, ox] = p.output;
    let c = p.channel;
    let mut lines = vec![format!(
        "m = layers.{}(r) is a {k}×{k} max pool (stride {}): m[{c},{oy},{ox}] = max of the window r[{c}, {}..{}, {}..{}]",
        p.layer,
        p.stride,
        oy * p.stride,
        oy * p.stride + p.kernel,
        ox * p.stride,
        ox * p.stride + p.kernel,
        k = p.kernel
    )];
    for (n, cell) in p.cells.iter().enumerate() {
        let [y, x] = cell.at;
        lines.push(format!(
            "    r[{c},{y},{x}] = {:<10} ∂L/∂r[{c},{y},{x}] = {}{}",
            short(cell.value),
            precise(f64::from(cell.gradient)),
            if n == p.argmax {
                "   ← the arg-max: it gets ∂L/∂m"
            } else {
                ""
            }
        ));
    }
    lines.push(format!(
        "m[{c},{oy},{ox}] = {}; ∂L/∂m[{c},{oy},{ox}] = {} goes to the arg-max alone, the other {} cells get 0 from this window",
        short(p.value),
        precise(f64::from(p.upstream)),
        p.cells.len() - 1
    ));
    if p.overlapping {
        lines.push(
            "(the windows overlap: a cell's gradient also holds what other windows pass it)"
                .to_string(),
        );
    }
    lines
}
