//! `nabla explain --model M --sample K`: one training step of a trained model on one sample of
//! its data, traced by `nabla::explain::explain_model`; this file reads the sample and formats
//! the trace (a few units per layer and terms per sum, the rest summed up).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use nabla::NablaError;
use nabla::data::builtin::{DIGITS_CSV, DIGITS_NAME};
use nabla::explain::{ModelTrace, ModelWeight, Stage, StageKind, Target, WeightRef, explain_model};
use nabla::io::ModelFile;
use nabla::io::input::{Rows, Targets};
use nabla::nn::{Network, Task};

use super::{ExplainArgs, Factor, Format, heading, num, precise, short};

/// Where the sample came from, for the header.
struct Sample {
    /// The data's name: a path or `digits (built-in)`.
    source: String,
    /// Row index.
    row: usize,
    /// Rows in the data.
    rows: usize,
    /// The target as the data writes it: a class name or a value in the target's units.
    truth: String,
}

/// Runs `nabla explain --model`.
pub(super) fn run(args: &ExplainArgs) -> Result<()> {
    let path = args.model.as_deref().unwrap_or(Path::new(""));
    let file = nabla::io::load(path).context("loading the model")?;
    let (source, rows) = read_data(args.data.as_deref(), &file)?;
    let row = args.sample.unwrap_or(0);
    let n = file.network.spec().inputs;
    if row >= rows.rows {
        return Err(NablaError::Usage(format!(
            "--sample {row}: {source} has {} rows, numbered 0 to {}",
            rows.rows,
            rows.rows.saturating_sub(1)
        ))
        .into());
    }
    let pre = &file.preprocess;
    let (target, truth) = match &rows.targets {
        Some(Targets::Classes(labels)) => {
            let c = labels[row] as usize;
            let name = file
                .network
                .spec()
                .classes
                .get(c)
                .cloned()
                .unwrap_or_default();
            (Target::Class(c), format!("class {name:?}"))
        }
        Some(Targets::Values(values)) => {
            let v = values[row];
            let scaled = (v - pre.target.center) / pre.target.scale;
            (
                Target::Value(scaled as f32),
                format!("{} = {v}", pre.target.name),
            )
        }
        None => {
            return Err(NablaError::data(
                PathBuf::from(&source),
                "header",
                format!(
                    "no target column {:?}: explaining a training step needs the true label",
                    pre.target.name
                ),
            )
            .into());
        }
    };
    let encoded: Vec<f64> = rows.values[row * n..(row + 1) * n]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let mut x = vec![0.0f32; n];
    pre.normalise(&encoded, &mut x);

    let also = args
        .weight
        .as_deref()
        .map(|w| WeightRef::parse(&file.network, w))
        .transpose()?;
    let trained_lr = nabla::config::RunConfig::from_training(&file.training).and_then(|c| c.lr);
    let lr = args.lr.or(trained_lr).unwrap_or(0.01);
    let trace = explain_model(
        &file.network,
        &x,
        target,
        usize::from(args.limit),
        also,
        lr as f32,
        args.epsilon as f32,
    )?;
    let chosen = match also {
        Some(r) => trace.weights.iter().find(|w| {
            trace.stages[w.stage].layer == r.layer && w.row == r.unit && w.column == r.input
        }),
        None => trace.weights.first(),
    }
    .context("internal: the chosen weight is not in the trace")?;
    let sample = Sample {
        source,
        row,
        rows: rows.rows,
        truth,
    };
    let view = View {
        trace: &trace,
        net: &file.network,
        file: &file,
        limit: usize::from(args.limit),
    };
    let chain = view.chain(chosen);
    let out = match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Json<'a> {
                model: String,
                network: String,
                data: &'a str,
                sample: usize,
                truth: &'a str,
                #[serde(flatten)]
                trace: &'a ModelTrace,
                chain: &'a Chain,
            }
            serde_json::to_string_pretty(&Json {
                model: path.display().to_string(),
                network: view.describe(),
                data: &sample.source,
                sample: row,
                truth: &sample.truth,
                trace: &trace,
                chain: &chain,
            })? + "\n"
        }
        Format::Text | Format::Markdown => {
            let md = args.format == Format::Markdown;
            view.render(
                path,
                &sample,
                &chain,
                md,
                trained_lr.is_some() && args.lr.is_none(),
            )?
        }
    };
    crate::cli::print(&out)?;
    Ok(())
}

/// Reads the data the sample comes from: `--data`, else the data named in the model file.
fn read_data(data: Option<&Path>, file: &ModelFile) -> Result<(String, Rows)> {
    let pre = &file.preprocess;
    if let Some(path) = data {
        let rows = nabla::io::input::read(path, pre).context("reading the data")?;
        return Ok((path.display().to_string(), rows));
    }
    let trained_on = file.training.get("data").and_then(|v| v.as_str());
    match trained_on {
        Some(DIGITS_NAME) => {
            let rows = nabla::io::input::read_csv_bytes(
                Path::new("built-in digits.csv"),
                DIGITS_CSV.as_bytes(),
                pre,
            )?;
            Ok((DIGITS_NAME.to_string(), rows))
        }
        Some(name) if Path::new(name).exists() => {
            let rows = nabla::io::input::read(Path::new(name), pre).context("reading the data")?;
            Ok((name.to_string(), rows))
        }
        Some(name) => Err(NablaError::Usage(format!(
            "the model was trained on {name}, which is not here: pass --data PATH with its columns"
        ))
        .into()),
        None => Err(NablaError::Usage(
            "the model file does not say what it was trained on: pass --data PATH".into(),
        )
        .into()),
    }
}

/// The full chain rule for one weight of a trained model.
#[derive(Debug, Serialize)]
struct Chain {
    weight: String,
    param: String,
    /// `∂L/∂w` as a product of these, from the loss side down to the weight.
    factors: Vec<Factor>,
    /// When the first factor is a sum over the next layer's units: its largest terms.
    terms: Vec<Factor>,
    /// How many terms of that sum are not shown.
    terms_not_shown: usize,
    /// What the terms not shown add up to.
    terms_rest: f64,
    /// How the next layers' gradients arise, down from the loss.
    upstream: Vec<String>,
    product: f64,
    gradient: f32,
    numeric_gradient: f64,
}

/// "term" or "terms".
fn plural_terms(n: usize) -> &'static str {
    if n == 1 { "term" } else { "terms" }
}

/// A trace with what it needs to be read: the network and the model file.
struct View<'a> {
    trace: &'a ModelTrace,
    net: &'a Network,
    file: &'a ModelFile,
    limit: usize,
}

/// `(0.0123, −0.0040, 0.5000, …)`: the first `limit` values of a vector.
fn head(v: &[f32], limit: usize) -> String {
    let mut parts: Vec<String> = v.iter().take(limit).map(|&x| short(x)).collect();
    if v.len() > limit {
        parts.push(format!("… {} more", v.len() - limit));
    }
    format!("({})", parts.join(", "))
}

impl View<'_> {
    fn stages(&self) -> &[Stage] {
        &self.trace.stages
    }

    /// `64 inputs → 256 relu → 128 relu → 10 outputs (softmax), cross-entropy loss`.
    fn describe(&self) -> String {
        let spec = self.net.spec();
        let mut parts = vec![format!("{} inputs", spec.inputs)];
        for l in &spec.layers {
            match *l {
                nabla::nn::LayerSpec::Linear { outputs, .. } => parts.push(outputs.to_string()),
                other => {
                    if let Some(last) = parts.last_mut() {
                        last.push(' ');
                        last.push_str(other.name());
                    }
                }
            }
        }
        if let Some(last) = parts.last_mut() {
            *last = match spec.task {
                Task::Classification => format!("{last} outputs (softmax), cross-entropy loss"),
                Task::Regression => format!("{last} output, squared-error loss"),
            };
        }
        parts.join(" → ")
    }

    /// The name and value of the vector stage `s` reads (`x` for the first).
    fn input_of(&self, s: usize) -> (&str, &[f32]) {
        match s.checked_sub(1) {
            Some(p) => (&self.stages()[p].symbol, &self.stages()[p].value),
            None => ("x", &self.trace.inputs),
        }
    }

    /// The linear stage at or before `s` (whose shown units `s` shares).
    fn linear_at_or_before(&self, s: usize) -> Option<usize> {
        (0..=s)
            .rev()
            .find(|&t| matches!(self.stages()[t].kind, StageKind::Linear { .. }))
    }

    /// Units shown for stage `s`: those of its linear stage's shown weights.
    fn units(&self, s: usize) -> Vec<usize> {
        let Some(l) = self.linear_at_or_before(s) else {
            return (0..self.stages()[s].value.len().min(self.limit)).collect();
        };
        let mut units: Vec<usize> = Vec::new();
        for w in self.trace.weights.iter().filter(|w| w.stage == l) {
            if !units.contains(&w.row) {
                units.push(w.row);
            }
        }
        units
    }

    /// The weight matrix `[outputs, inputs]` of the linear layer `layer`.
    fn weight(&self, layer: usize) -> Option<&nabla::tensor::Tensor> {
        let name = format!("layers.{layer}.weight");
        let params = self.net.params();
        params.find(&name).map(|id| params.get(id))
    }

    fn number(&self, s: usize) -> usize {
        match self.stages()[s].kind {
            StageKind::Linear { number, .. } => number,
            _ => 0,
        }
    }

    /// `∂L/∂{stage t}[j]` as `Σ_m W[m,j]·∂L/∂z[m]` over the linear stage `t + 1`: the largest
    /// `limit` terms (by size), how many are left and what they add up to.
    fn sum_terms(&self, t: usize, j: usize) -> (Vec<Factor>, usize, f64) {
        let next = &self.stages()[t + 1];
        let k = self.number(t + 1);
        let Some(w) = self.weight(next.layer) else {
            return (Vec::new(), 0, 0.0);
        };
        let cols = w.cols();
        let mut terms: Vec<Factor> = (0..w.rows())
            .map(|m| {
                let (wv, g) = (w.data()[m * cols + j], next.gradient[m]);
                Factor {
                    name: format!("W{k}[{m},{j}]·∂L/∂{}[{m}]", next.symbol),
                    formula: format!("{}·{}", num(wv), num(g)),
                    value: f64::from(wv) * f64::from(g),
                }
            })
            .collect();
        terms.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        let hidden = terms.len().saturating_sub(self.limit);
        let rest = terms.iter().skip(self.limit).map(|f| f.value).sum();
        terms.truncate(self.limit);
        (terms, hidden, rest)
    }

    /// The local gradient of elementwise stage `t` at unit `j`: its symbol (`relu'(z1[3])`) and
    /// why it has its value (`z1[3] = 0.2405 > 0`).
    fn local_formula(&self, t: usize, j: usize) -> (String, String) {
        let st = &self.stages()[t];
        let (input, before) = self.input_of(t);
        let z = before.get(j).copied().unwrap_or(f32::NAN);
        let h = st.value.get(j).copied().unwrap_or(f32::NAN);
        match &st.kind {
            StageKind::Activation { function } => {
                let short = match function.as_str() {
                    "sigmoid" => format!("σ'({input}[{j}])"),
                    f => format!("{f}'({input}[{j}])"),
                };
                let why = match function.as_str() {
                    "relu" | "leaky_relu" => format!(
                        "{input}[{j}] = {z:.4} {} 0",
                        if z > 0.0 { ">" } else { "≤" }
                    ),
                    "sigmoid" => format!("h(1 − h) with h = {}[{j}] = {h:.4}", st.symbol),
                    "tanh" => format!("1 − h² with h = {}[{j}] = {h:.4}", st.symbol),
                    "gelu" => format!("Φ(z) + z·φ(z) at z = {z:.4}"),
                    _ => format!("at {input}[{j}] = {z:.4}"),
                };
                (short, why)
            }
            StageKind::BatchNorm { .. } => {
                (format!("s[{j}]"), format!("γ[{j}] / √(σ²_run[{j}] + ε)"))
            }
            StageKind::Linear { .. } => (String::new(), String::new()),
        }
    }

    /// The derivative of the loss with respect to the scores, per output `c`, as a formula.
    fn loss_formula(&self, c: usize) -> String {
        let last = &self.stages()[self.stages().len() - 1];
        match self.trace.target {
            Target::Class(y) => {
                let p = self
                    .trace
                    .probabilities
                    .as_ref()
                    .and_then(|p| p.get(c))
                    .copied()
                    .unwrap_or(f32::NAN);
                format!("p[{c}] − y[{c}] = {} − {}", short(p), u8::from(c == y))
            }
            Target::Value(y) => format!(
                "2·(ŷ − y) = 2·({} − {})",
                num(last.value.first().copied().unwrap_or(f32::NAN)),
                num(y)
            ),
        }
    }

    /// How `∂L/∂{stage t}` arises from the stage after it, in vector form.
    fn vector_rule(&self, t: usize) -> String {
        let st = &self.stages()[t];
        let Some(next) = self.stages().get(t + 1) else {
            return match self.trace.target {
                Target::Class(_) => {
                    format!("∂L/∂{} = p − y (softmax with cross-entropy)", st.symbol)
                }
                Target::Value(_) => format!("∂L/∂{} = 2·(ŷ − y) (squared error)", st.symbol),
            };
        };
        match &next.kind {
            StageKind::Linear { number, .. } => {
                format!("∂L/∂{} = W{number}ᵀ·∂L/∂{}", st.symbol, next.symbol)
            }
            StageKind::Activation { function } => format!(
                "∂L/∂{} = ∂L/∂{} ⊙ {function}'({})",
                st.symbol, next.symbol, st.symbol
            ),
            StageKind::BatchNorm { .. } => {
                format!("∂L/∂{} = ∂L/∂{} ⊙ s", st.symbol, next.symbol)
            }
        }
    }

    /// The full chain rule for `w`, factor by factor.
    fn chain(&self, w: &ModelWeight) -> Chain {
        let stages = self.stages();
        let j = w.row;
        // The elementwise stages right after the weight's linear stage.
        let mut top = w.stage;
        while stages
            .get(top + 1)
            .is_some_and(|s| !matches!(s.kind, StageKind::Linear { .. }))
        {
            top += 1;
        }
        let mut factors = Vec::new();
        let (mut terms, mut terms_not_shown, mut terms_rest) = (Vec::new(), 0, 0.0);
        let mut upstream = Vec::new();
        let top_stage = &stages[top];
        if top + 1 < stages.len() {
            (terms, terms_not_shown, terms_rest) = self.sum_terms(top, j);
            let next = &stages[top + 1];
            factors.push(Factor {
                name: format!("∂L/∂{}[{j}]", top_stage.symbol),
                formula: format!(
                    "Σ_m W{}[m,{j}]·∂L/∂{}[m] over {} units",
                    self.number(top + 1),
                    next.symbol,
                    next.value.len()
                ),
                value: f64::from(top_stage.gradient[j]),
            });
            for t in (top + 1..stages.len()).rev() {
                upstream.push(format!(
                    "{} = {}",
                    self.vector_rule(t),
                    head(&stages[t].gradient, self.limit)
                ));
            }
        } else {
            factors.push(Factor {
                name: format!("∂L/∂{}[{j}]", top_stage.symbol),
                formula: self.loss_formula(j),
                value: f64::from(top_stage.gradient[j]),
            });
        }
        for t in (w.stage + 1..=top).rev() {
            let (input, _) = self.input_of(t);
            factors.push(Factor {
                name: format!("∂{}[{j}]/∂{input}[{j}]", stages[t].symbol),
                formula: {
                    let (short, why) = self.local_formula(t, j);
                    format!("{short} ({why})")
                },
                value: f64::from(
                    stages[t]
                        .local
                        .as_ref()
                        .and_then(|l| l.get(j))
                        .copied()
                        .unwrap_or(f32::NAN),
                ),
            });
        }
        factors.push(Factor {
            name: format!("∂{}[{j}]/∂{}", stages[w.stage].symbol, w.trace.name),
            formula: w.trace.local_name.clone(),
            value: f64::from(w.trace.local),
        });
        Chain {
            weight: w.trace.name.clone(),
            param: w.param.clone(),
            product: factors.iter().map(|f| f.value).product(),
            factors,
            terms,
            terms_not_shown,
            terms_rest,
            upstream,
            gradient: w.trace.gradient,
            numeric_gradient: w.trace.numeric_gradient,
        }
    }

    fn render(
        &self,
        path: &Path,
        sample: &Sample,
        c: &Chain,
        md: bool,
        lr_from_model: bool,
    ) -> Result<String> {
        let mut s = String::new();
        let t = self.trace;
        let stages = self.stages();
        let (open, close) = if md { ("```text\n", "```\n") } else { ("", "") };
        let gap = if md { "\n" } else { "" };
        if md {
            writeln!(
                s,
                "# Backpropagation by hand: one training step of a trained model\n"
            )?;
        } else {
            writeln!(
                s,
                "nabla explain — one training step of a trained model, every number from the engine's tape\n"
            )?;
        }
        let nonzero = t.inputs.iter().filter(|&&v| v != 0.0).count();
        writeln!(s, "Model:   {}: {}{gap}", path.display(), self.describe())?;
        writeln!(
            s,
            "Sample:  row {} of the {} in {}, {}; x = the row after the model's preprocessing ({} inputs, {nonzero} not 0){gap}",
            sample.row,
            sample.rows,
            sample.source,
            sample.truth,
            t.inputs.len()
        )?;
        writeln!(
            s,
            "Shown:   per layer {l} unit{s} that get{v} a gradient, per sum {l} term{s} whose input is \
             not 0 (--limit); the rest are summed up. Dropout is off and batch norm uses its \
             running statistics, as in evaluation.\n",
            l = self.limit,
            s = if self.limit == 1 { "" } else { "s" },
            v = if self.limit == 1 { "s" } else { "" },
        )?;

        heading(&mut s, "1. Forward pass", md);
        s += open;
        for (i, st) in stages.iter().enumerate() {
            let (input, a) = self.input_of(i);
            let units = self.units(i);
            match &st.kind {
                StageKind::Linear {
                    number,
                    weight,
                    inputs,
                    outputs,
                    ..
                } => {
                    let k = *number;
                    writeln!(
                        s,
                        "{} = W{k}·{input} + b{k}    (linear {inputs} → {outputs}; W{k} is {weight} in the model file)",
                        st.symbol
                    )?;
                    let w = self.weight(st.layer);
                    for &j in &units {
                        let shown: Vec<&ModelWeight> = t
                            .weights
                            .iter()
                            .filter(|w| w.stage == i && w.row == j && w.column.is_some())
                            .collect();
                        let bias = t
                            .weights
                            .iter()
                            .find(|w| w.stage == i && w.row == j && w.column.is_none());
                        let rest: f64 = w.map_or(0.0, |w| {
                            (0..w.cols())
                                .filter(|c| !shown.iter().any(|x| x.column == Some(*c)))
                                .map(|c| f64::from(w.data()[j * w.cols() + c]) * f64::from(a[c]))
                                .sum()
                        });
                        let more = a.len() - shown.len();
                        let mut sym: Vec<String> = shown
                            .iter()
                            .map(|w| format!("{}·{}", w.trace.name, w.trace.local_name))
                            .collect();
                        let mut val: Vec<String> = shown
                            .iter()
                            .map(|w| format!("{}·{}", num(w.trace.value), num(w.trace.local)))
                            .collect();
                        if more > 0 {
                            sym.push(format!("({more} more {})", plural_terms(more)));
                            val.push(num(rest as f32));
                        }
                        let b = bias.map_or(0.0, |b| b.trace.value);
                        let name = format!("{}[{j}]", st.symbol);
                        let pad = " ".repeat(name.chars().count());
                        writeln!(s, "{name} = {} + b{k}[{j}]", sym.join(" + "))?;
                        writeln!(s, "{pad} = {} + {}", val.join(" + "), num(b))?;
                        writeln!(s, "{pad} = {:.4}", st.value[j])?;
                    }
                    if st.value.len() > units.len() {
                        writeln!(s, "… and {} more units", st.value.len() - units.len())?;
                    }
                }
                StageKind::Activation { function } => {
                    writeln!(s, "{} = {function}({input})", st.symbol)?;
                    for &j in &units {
                        writeln!(
                            s,
                            "{}[{j}] = {function}({input}[{j}]) = {function}({:.4}) = {:.4}",
                            st.symbol, a[j], st.value[j]
                        )?;
                    }
                    if function == "relu" {
                        let active = st.value.iter().filter(|&&v| v > 0.0).count();
                        writeln!(
                            s,
                            "{}: {active} of {} units active (> 0); the others pass no gradient back",
                            st.symbol,
                            st.value.len()
                        )?;
                    }
                }
                StageKind::BatchNorm { scale, shift } => {
                    writeln!(
                        s,
                        "{} = {input}·s + t    (batch norm: s = γ/√(σ²_run + ε), t = β − μ_run·s)",
                        st.symbol
                    )?;
                    for &j in &units {
                        writeln!(
                            s,
                            "{}[{j}] = {}·{} + {} = {:.4}",
                            st.symbol,
                            num(a[j]),
                            num(scale[j]),
                            num(shift[j]),
                            st.value[j]
                        )?;
                    }
                }
            }
            writeln!(s)?;
        }
        let last = &stages[stages.len() - 1];
        match (t.target, &t.probabilities) {
            (Target::Class(y), Some(p)) => {
                let classes = &self.net.spec().classes;
                writeln!(
                    s,
                    "p = softmax({z}):  p[c] = e^{z}[c] / Σ_m e^{z}[m]",
                    z = last.symbol
                )?;
                let mut shown: Vec<usize> = (0..p.len()).collect();
                if p.len() > 10 {
                    shown.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
                    shown.truncate(self.limit);
                    if !shown.contains(&y) {
                        shown.push(y);
                    }
                }
                let width = format!("p[{}]", p.len().saturating_sub(1)).len();
                for &c in &shown {
                    writeln!(
                        s,
                        "{:<width$} = {:<10} class {:?}{}",
                        format!("p[{c}]"),
                        short(p[c]),
                        classes.get(c).map_or("", String::as_str),
                        if c == y { "  ← true class" } else { "" }
                    )?;
                }
                if shown.len() < p.len() {
                    writeln!(
                        s,
                        "… and {} more classes, each below p = {}",
                        p.len() - shown.len(),
                        short(
                            (0..p.len())
                                .filter(|c| !shown.contains(c))
                                .map(|c| p[c])
                                .fold(0.0, f32::max)
                        )
                    )?;
                }
                let best = nabla::kernels::softmax::argmax(p);
                writeln!(
                    s,
                    "prediction: class {:?} (p = {:.4})",
                    classes.get(best).map_or("", String::as_str),
                    p[best]
                )?;
                writeln!(
                    s,
                    "L = −log p[{y}] = −log {:.6} = {}",
                    p[y],
                    precise(t.loss.into())
                )?;
            }
            (Target::Value(y), _) => {
                let target = &self.file.preprocess.target;
                let original = |v: f32| f64::from(v) * target.scale + target.center;
                writeln!(
                    s,
                    "ŷ = {}[0] = {:.4}, y = {:.4} (in the target's scaled units; in {}'s own: ŷ = {:.4}, y = {:.4})",
                    last.symbol,
                    last.value[0],
                    y,
                    target.name,
                    original(last.value[0]),
                    original(y)
                )?;
                writeln!(s, "L = (ŷ − y)² = {}", precise(t.loss.into()))?;
            }
            _ => {}
        }
        s += close;
        writeln!(s)?;

        heading(
            &mut s,
            "2. Backpropagation, layer by layer: upstream × local = downstream",
            md,
        );
        s += open;
        for i in (0..stages.len()).rev() {
            let st = &stages[i];
            writeln!(s, "{}", self.vector_rule(i))?;
            let units: Vec<usize> = if i + 1 == stages.len() && st.value.len() <= 10 {
                (0..st.value.len()).collect()
            } else {
                self.units(i)
            };
            if units.len() < st.value.len() && i + 1 == stages.len() {
                writeln!(s, "(shown: {} of {} outputs)", units.len(), st.value.len())?;
            }
            for &j in &units {
                let g = st.gradient[j];
                match stages.get(i + 1).map(|n| &n.kind) {
                    None => writeln!(
                        s,
                        "∂L/∂{}[{j}] = {} = {}",
                        st.symbol,
                        self.loss_formula(j),
                        precise(g.into())
                    )?,
                    Some(StageKind::Linear { .. }) => {
                        let (terms, more, rest) = self.sum_terms(i, j);
                        let mut vals: Vec<String> =
                            terms.iter().map(|f| f.formula.clone()).collect();
                        if more > 0 {
                            vals.push(format!(
                                "({more} smaller {}: {})",
                                plural_terms(more),
                                num(rest as f32)
                            ));
                        }
                        writeln!(
                            s,
                            "∂L/∂{}[{j}] = {} = {}",
                            st.symbol,
                            vals.join(" + "),
                            precise(g.into())
                        )?;
                    }
                    Some(_) => {
                        let next = &stages[i + 1];
                        let local = next.local.as_ref().map_or(f32::NAN, |l| l[j]);
                        writeln!(
                            s,
                            "∂L/∂{}[{j}] = ∂L/∂{}[{j}] · {} = {} · {local:.4} = {}",
                            st.symbol,
                            next.symbol,
                            self.local_formula(i + 1, j).0,
                            num(next.gradient[j]),
                            precise(g.into()),
                        )?;
                    }
                }
            }
            writeln!(s)?;
        }
        s += close;
        if md {
            writeln!(
                s,
                "| weight | model file | upstream ∂L/∂z | × local ∂z/∂w | = downstream ∂L/∂w | finite difference |"
            )?;
            writeln!(s, "|---|---|---|---|---|---|")?;
        } else {
            writeln!(
                s,
                "{:<12} {:<26} {:<24} {:<20} {:<20} finite difference",
                "weight", "model file", "upstream ∂L/∂z", "× local ∂z/∂w", "= downstream ∂L/∂w"
            )?;
        }
        for w in &t.weights {
            let w8 = &w.trace;
            let up = format!("∂L/∂{} = {}", w8.unit, precise(w8.upstream.into()));
            let local = format!("{} = {:.4}", w8.local_name, w8.local);
            let down = precise(w8.gradient.into());
            let fd = precise(w8.numeric_gradient);
            if md {
                writeln!(
                    s,
                    "| {} | {} | {up} | {local} | {down} | {fd} |",
                    w8.name, w.param
                )?;
            } else {
                writeln!(
                    s,
                    "{:<12} {:<26} {up:<24} {local:<20} {down:<20} {fd}",
                    w8.name, w.param
                )?;
            }
        }
        writeln!(s)?;
        writeln!(
            s,
            "Every parameter tensor, checked whole: with u = ∇/‖∇‖, (L(W + εu) − L(W − εu)) / 2ε should equal ‖∇‖ (ε = {}):{gap}",
            short(t.tensors.first().map_or(0.0, |c| c.epsilon))
        )?;
        if md {
            writeln!(
                s,
                "| tensor | shape | ‖∂L/∂W‖ | finite difference along ∇ | gap |"
            )?;
            writeln!(s, "|---|---|---|---|---|")?;
        } else {
            writeln!(
                s,
                "{:<20} {:<10} {:<14} {:<26} gap",
                "tensor", "shape", "‖∂L/∂W‖", "finite difference along ∇"
            )?;
        }
        for tc in &t.tensors {
            let shape = tc
                .shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("×");
            let (norm, numeric) = (precise(tc.gradient_norm), precise(tc.numeric_directional));
            let gap = if tc.gradient_norm > 0.0 {
                format!(
                    "{:+.2} %",
                    100.0 * (tc.numeric_directional / tc.gradient_norm - 1.0)
                )
            } else {
                "(no gradient)".to_string()
            };
            if md {
                writeln!(s, "| {} | {shape} | {norm} | {numeric} | {gap} |", tc.name)?;
            } else {
                writeln!(
                    s,
                    "{:<20} {shape:<10} {norm:<14} {numeric:<26} {gap}",
                    tc.name
                )?;
            }
        }
        writeln!(
            s,
            "{gap}(Finite differences are approximate: their error grows with ε², and a step can cross \
             a ReLU kink; a wrong gradient would be off by far more.)\n"
        )?;

        heading(
            &mut s,
            &format!("3. The full chain for {} ({})", c.weight, c.param),
            md,
        );
        s += open;
        let names: Vec<&str> = c.factors.iter().map(|f| f.name.as_str()).collect();
        writeln!(s, "∂L/∂{} = {}", c.weight, names.join(" · "))?;
        for (n, f) in c.factors.iter().enumerate() {
            writeln!(s, "  {} = {} = {}", f.name, f.formula, precise(f.value))?;
            if n == 0 && !c.terms.is_empty() {
                for term in &c.terms {
                    writeln!(
                        s,
                        "      {} = {} = {}",
                        term.name,
                        term.formula,
                        precise(term.value)
                    )?;
                }
                if c.terms_not_shown > 0 {
                    writeln!(
                        s,
                        "      + {} smaller {} = {}",
                        c.terms_not_shown,
                        plural_terms(c.terms_not_shown),
                        precise(c.terms_rest)
                    )?;
                }
                writeln!(s, "    where, down from the loss:")?;
                for u in &c.upstream {
                    writeln!(s, "      {u}")?;
                }
            }
        }
        let vals: Vec<String> = c.factors.iter().map(|f| num(f.value as f32)).collect();
        writeln!(
            s,
            "∂L/∂{} = {} = {}   (engine's backward pass: {})",
            c.weight,
            vals.join(" · "),
            precise(c.product),
            precise(c.gradient.into())
        )?;
        writeln!(
            s,
            "finite difference: (L({w}+ε) − L({w}−ε)) / 2ε with ε = {} gives {}",
            t.epsilon,
            precise(c.numeric_gradient),
            w = c.weight
        )?;
        s += close;
        writeln!(s)?;

        let source = if lr_from_model {
            ", the model's training learning rate"
        } else {
            ""
        };
        heading(
            &mut s,
            &format!(
                "4. The update: W ← W − lr·∂L/∂W with lr = {}{source}",
                t.learning_rate
            ),
            md,
        );
        s += open;
        // The first shown unit of each layer (every shown weight is in the JSON).
        let first_units: Vec<(usize, usize)> = stages
            .iter()
            .enumerate()
            .filter_map(|(i, _)| t.weights.iter().find(|w| w.stage == i).map(|w| (i, w.row)))
            .collect();
        for w in t
            .weights
            .iter()
            .filter(|w| first_units.contains(&(w.stage, w.row)) || w.trace.name == c.weight)
        {
            writeln!(
                s,
                "{:<12} ← {:.6} − {}·{} = {:.6}   (change {:+.3e})",
                w.trace.name,
                w.trace.value,
                t.learning_rate,
                num(w.trace.gradient),
                w.trace.updated,
                w.trace.updated - w.trace.value
            )?;
        }
        s += close;
        let count = self.net.params().count();
        let optimizer = self
            .file
            .training
            .get("optimizer")
            .and_then(|v| v.as_str())
            .filter(|o| *o != "sgd");
        writeln!(
            s,
            "\nOne plain gradient step on this sample, applied to all {count} parameters, takes its loss from {} to {}.{}",
            precise(t.loss.into()),
            precise(t.loss_after.into()),
            optimizer.map_or(String::new(), |o| format!(
                " (Training used {o}, which scales each step by its own statistics; the gradient it starts from is this one.)"
            ))
        )?;
        Ok(s)
    }
}
