//! `nabla explain --model M --sample K`: one training step of a trained model on one sample of
//! its data, traced by `nabla::explain::explain_model`. This file reads the sample and says what
//! to show of the trace (a few units per layer and terms per sum, the rest summed up); [`Doc`]
//! writes it as text or markdown. What depends on a stage's kind of layer stays in a few small
//! functions: `describe`, `is_linear`, `number`, `local_formula`, `vector_rule`, `forward_stage`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use nabla::NablaError;
use nabla::data::builtin::{DIGITS_CSV, DIGITS_NAME};
use nabla::explain::{
    ModelTrace, ModelWeight, Stage, StageKind, Target, TensorCheck, WeightRef, explain_model,
};
use nabla::io::ModelFile;
use nabla::io::input::{Rows, Targets};
use nabla::nn::{Network, Task};

use super::doc::{Column, Doc, Markup, Table};
use super::{ExplainArgs, Factor, num, precise, short};

/// Where the sample came from, for the header.
pub(super) struct Sample {
    /// The data's name: a path or `digits (built-in)`.
    pub(super) source: String,
    /// Row index.
    pub(super) row: usize,
    /// Rows in the data.
    pub(super) rows: usize,
    /// The target as the data writes it: a class name or a value in the target's units.
    pub(super) truth: String,
}

/// Runs `nabla explain --model`.
pub(super) fn run(args: &ExplainArgs) -> Result<()> {
    let path = args.model.as_deref().unwrap_or(Path::new(""));
    let (resolved, file) =
        crate::cli::model_path::load_to_run(path).context("loading the model")?;
    let path = resolved.as_path();
    let (sample, x, target) = read_sample(args, &file)?;
    if file.network.spec().layers.iter().any(|l| l.needs_image()) {
        return super::conv::run(args, path, &file, &sample, (&x, target));
    }
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
    let view = View {
        trace: &trace,
        net: &file.network,
        file: &file,
        limit: usize::from(args.limit),
    };
    let chain = view.chain(view.chosen(also)?);
    let out = match args.format.markup() {
        None => view.json(path, &sample, &chain)?,
        Some(markup) => view.render(
            markup,
            path,
            &sample,
            &chain,
            trained_lr.is_some() && args.lr.is_none(),
        ),
    };
    crate::cli::print(&out)?;
    Ok(())
}

/// The sample `--sample` picks from the data: where it came from, its inputs after the model's
/// preprocessing, and its target as the trace takes it.
fn read_sample(args: &ExplainArgs, file: &ModelFile) -> Result<(Sample, Vec<f32>, Target)> {
    let (source, rows) = read_data(args.data.as_deref(), file)?;
    let row = args.sample.unwrap_or(0);
    if row >= rows.rows {
        return Err(NablaError::Usage(format!(
            "--sample {row}: {source} has {} rows, numbered 0 to {}",
            rows.rows,
            rows.rows.saturating_sub(1)
        ))
        .into());
    }
    let (target, truth) = target_of(&rows, row, file, &source)?;
    let n = file.network.spec().inputs;
    let encoded: Vec<f64> = rows.values[row * n..(row + 1) * n]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let mut x = vec![0.0f32; n];
    file.preprocess.normalise(&encoded, &mut x);
    let sample = Sample {
        source,
        row,
        rows: rows.rows,
        truth,
    };
    Ok((sample, x, target))
}

/// Row `row`'s target: as the trace takes it (a class, or a value in the scaled units the
/// model predicts) and as the data writes it (`class "7"`, `price = 3.5`).
fn target_of(rows: &Rows, row: usize, file: &ModelFile, source: &str) -> Result<(Target, String)> {
    let pre = &file.preprocess;
    match &rows.targets {
        Some(Targets::Classes(labels)) => {
            let c = labels[row] as usize;
            let classes = &file.network.spec().classes;
            let name = classes.get(c).cloned().unwrap_or_default();
            Ok((Target::Class(c), format!("class {name:?}")))
        }
        Some(Targets::Values(values)) => {
            let v = values[row];
            let scaled = (v - pre.target.center) / pre.target.scale;
            Ok((
                Target::Value(scaled as f32),
                format!("{} = {v}", pre.target.name),
            ))
        }
        None => Err(NablaError::data(
            PathBuf::from(source),
            "header",
            format!(
                "no target column {:?}: explaining a training step needs the true label",
                pre.target.name
            ),
        )
        .into()),
    }
}

/// Reads the data the sample comes from: `--data`, else the data named in the model file.
fn read_data(data: Option<&Path>, file: &ModelFile) -> Result<(String, Rows)> {
    let pre = &file.preprocess;
    if let Some(path) = data {
        let rows = nabla::io::input::read(path, pre).context("reading the data")?;
        for w in &rows.warnings {
            eprintln!("warning: {w}");
        }
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

/// Whether `stage` is a linear layer's `z = W·x + b` (every other stage is elementwise).
fn is_linear(stage: &Stage) -> bool {
    matches!(stage.kind, StageKind::Linear { .. })
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

    /// The weight whose full chain is shown: `--weight`'s, else the first shown.
    fn chosen(&self, also: Option<WeightRef>) -> Result<&ModelWeight> {
        let t = self.trace;
        match also {
            Some(r) => t.weights.iter().find(|w| {
                matches!(t.stages[w.stage].kind, StageKind::Linear { number, .. } if number == r.number)
                    && w.row == r.unit
                    && w.column == r.input
            }),
            None => t.weights.first(),
        }
        .context("internal: the chosen weight is not in the trace")
    }

    /// The `--format json` object: the trace with the model, the sample and the chain.
    fn json(&self, path: &Path, sample: &Sample, chain: &Chain) -> Result<String> {
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
        let json = serde_json::to_string_pretty(&Json {
            model: path.display().to_string(),
            network: self.describe(),
            data: &sample.source,
            sample: sample.row,
            truth: &sample.truth,
            trace: self.trace,
            chain,
        })?;
        Ok(json + "\n")
    }

    /// `64 inputs → 256 relu → 128 relu → 10 outputs (softmax), cross-entropy loss`.
    fn describe(&self) -> String {
        let spec = self.net.spec();
        let mut parts = vec![format!("{} inputs", spec.inputs)];
        for l in &spec.layers {
            if let Some((_, outputs)) = l.as_linear() {
                parts.push(outputs.to_string());
            } else if let Some(last) = parts.last_mut() {
                last.push(' ');
                last.push_str(l.name());
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
        (0..=s).rev().find(|&t| is_linear(&self.stages()[t]))
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

    /// The weight matrix `[outputs, inputs]` of linear stage `stage`.
    fn weight(&self, stage: &Stage) -> Option<&nabla::tensor::Tensor> {
        let StageKind::Linear { weight, .. } = &stage.kind else {
            return None;
        };
        let params = self.net.params();
        params.find(weight).map(|id| params.get(id))
    }

    fn number(&self, s: usize) -> usize {
        if let StageKind::Linear { number, .. } = self.stages()[s].kind {
            number
        } else {
            0
        }
    }

    /// `∂L/∂{stage t}[j]` as `Σ_m W[m,j]·∂L/∂z[m]` over the linear stage `t + 1`: the largest
    /// `limit` terms (by size), how many are left and what they add up to.
    fn sum_terms(&self, t: usize, j: usize) -> (Vec<Factor>, usize, f64) {
        let next = &self.stages()[t + 1];
        let k = self.number(t + 1);
        let Some(w) = self.weight(next) else {
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
            StageKind::Activation { activation, .. } => {
                let short = activation.derivative_symbol(&format!("{input}[{j}]"));
                let why = activation.derivative_reason(
                    &format!("{input}[{j}]"),
                    z,
                    &format!("{}[{j}]", st.symbol),
                    h,
                );
                (short, why)
            }
            StageKind::BatchNorm { .. } => {
                (format!("s[{j}]"), format!("γ[{j}] / √(σ²_run[{j}] + ε)"))
            }
            StageKind::Linear { .. } => (String::new(), String::new()),
            StageKind::Residual { .. } => (
                "1".to_string(),
                "a sum passes its gradient to each of its terms unchanged".to_string(),
            ),
        }
    }

    /// The residual stages whose skip is stage `t`: each adds its gradient to `t`'s.
    fn skips_from(&self, t: usize) -> Vec<&Stage> {
        let from = |s: &&Stage| matches!(s.kind, StageKind::Residual { skip_stage: Some(k), .. } if k == t);
        self.stages().iter().filter(from).collect()
    }

    /// ` + ∂L/∂r1 (the skip)` for each sum stage `t` feeds, with unit `j`'s index when given.
    fn skip_terms(&self, t: usize, j: Option<usize>) -> String {
        let at = j.map_or(String::new(), |j| format!("[{j}]"));
        let each = self.skips_from(t).into_iter();
        each.map(|r| format!(" + ∂L/∂{}{at} (the skip)", r.symbol))
            .collect()
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
        let skips = self.skip_terms(t, None);
        let rule = match &next.kind {
            StageKind::Linear { number, .. } => {
                format!("∂L/∂{} = W{number}ᵀ·∂L/∂{}", st.symbol, next.symbol)
            }
            StageKind::Residual { .. } => format!("∂L/∂{} = ∂L/∂{}", st.symbol, next.symbol),
            StageKind::Activation { function, .. } => format!(
                "∂L/∂{} = ∂L/∂{} ⊙ {function}'({})",
                st.symbol, next.symbol, st.symbol
            ),
            StageKind::BatchNorm { .. } => {
                format!("∂L/∂{} = ∂L/∂{} ⊙ s", st.symbol, next.symbol)
            }
        };
        rule + &skips
    }

    /// The full chain rule for `w`, factor by factor: the gradient reaching the last
    /// elementwise stage after `w`'s linear stage, each of those stages' local gradients, and
    /// `w`'s own local gradient.
    fn chain(&self, w: &ModelWeight) -> Chain {
        let j = w.row;
        let mut top = w.stage;
        while self.stages().get(top + 1).is_some_and(|s| !is_linear(s)) {
            top += 1;
        }
        let mut chain = Chain {
            weight: w.trace.name.clone(),
            param: w.param.clone(),
            factors: Vec::new(),
            terms: Vec::new(),
            terms_not_shown: 0,
            terms_rest: 0.0,
            upstream: Vec::new(),
            product: 0.0,
            gradient: w.trace.gradient,
            numeric_gradient: w.trace.numeric_gradient,
        };
        self.upstream_factor(top, j, &mut chain);
        for t in (w.stage + 1..=top).rev() {
            chain.factors.push(self.local_factor(t, j));
        }
        chain.factors.push(Factor {
            name: format!("∂{}[{j}]/∂{}", self.stages()[w.stage].symbol, w.trace.name),
            formula: w.trace.local_name.clone(),
            value: f64::from(w.trace.local),
        });
        chain.product = chain.factors.iter().map(|f| f.value).product();
        chain
    }

    /// The chain's first factor, `∂L/∂{stage top}[j]`: the loss's derivative for the last
    /// stage; otherwise a sum over the next linear layer's units, whose largest terms and the
    /// gradients down from the loss go into `chain` too.
    fn upstream_factor(&self, top: usize, j: usize, chain: &mut Chain) {
        let stages = self.stages();
        let top_stage = &stages[top];
        let name = format!("∂L/∂{}[{j}]", top_stage.symbol);
        let value = f64::from(top_stage.gradient[j]);
        let Some(next) = stages.get(top + 1) else {
            let formula = self.loss_formula(j);
            chain.factors.push(Factor {
                name,
                formula,
                value,
            });
            return;
        };
        (chain.terms, chain.terms_not_shown, chain.terms_rest) = self.sum_terms(top, j);
        let formula = format!(
            "Σ_m W{}[m,{j}]·∂L/∂{}[m] over {} units{}",
            self.number(top + 1),
            next.symbol,
            next.value.len(),
            self.skip_terms(top, Some(j))
        );
        for r in self.skips_from(top) {
            chain.terms.push(Factor {
                name: format!("∂L/∂{}[{j}] (the skip)", r.symbol),
                formula: num(r.gradient[j]),
                value: f64::from(r.gradient[j]),
            });
        }
        chain.factors.push(Factor {
            name,
            formula,
            value,
        });
        chain.upstream = (top + 1..stages.len())
            .rev()
            .map(|t| {
                let gradient = head(&stages[t].gradient, self.limit);
                format!("{} = {gradient}", self.vector_rule(t))
            })
            .collect();
    }

    /// `∂{stage t}[j]/∂{its input}[j]`: elementwise stage `t`'s local gradient at unit `j`,
    /// with why it has its value.
    fn local_factor(&self, t: usize, j: usize) -> Factor {
        let st = &self.stages()[t];
        let (input, _) = self.input_of(t);
        let (short, why) = self.local_formula(t, j);
        let local = st.local.as_ref().and_then(|l| l.get(j)).copied();
        Factor {
            name: format!("∂{}[{j}]/∂{input}[{j}]", st.symbol),
            formula: format!("{short} ({why})"),
            value: f64::from(local.unwrap_or(f32::NAN)),
        }
    }

    /// The walk-through as a document: header, forward pass, backward pass, the gradient
    /// checks, the chosen weight's full chain and the update.
    fn render(
        &self,
        markup: Markup,
        path: &Path,
        sample: &Sample,
        c: &Chain,
        lr_from_model: bool,
    ) -> String {
        let mut doc = Doc::new(markup);
        doc.title(
            "Backpropagation by hand: one training step of a trained model",
            "nabla explain — one training step of a trained model, every number from the engine's tape",
        );
        doc.lines(&self.header(path, sample));
        doc.heading("1. Forward pass");
        doc.equations(&self.forward());
        doc.heading("2. Backpropagation, layer by layer: upstream × local = downstream");
        doc.equations(&self.backward());
        doc.table(&self.weight_table());
        doc.table(&self.tensor_table());
        doc.heading(&format!("3. The full chain for {} ({})", c.weight, c.param));
        doc.equations(&self.chain_lines(c));
        let source = if lr_from_model {
            ", the model's training learning rate"
        } else {
            ""
        };
        doc.heading(&format!(
            "4. The update: W ← W − lr·∂L/∂W with lr = {}{source}",
            self.trace.learning_rate
        ));
        doc.equations(&self.update_lines(c));
        doc.paragraph(&self.closing());
        doc.finish()
    }

    /// The model, the sample and what is shown of them.
    fn header(&self, path: &Path, sample: &Sample) -> Vec<String> {
        let inputs = &self.trace.inputs;
        let nonzero = inputs.iter().filter(|&&v| v != 0.0).count();
        vec![
            format!("Model:   {}: {}", path.display(), self.describe()),
            format!(
                "Sample:  row {} of the {} in {}, {}; x = the row after the model's preprocessing ({} inputs, {nonzero} not 0)",
                sample.row,
                sample.rows,
                sample.source,
                sample.truth,
                inputs.len()
            ),
            format!(
                "Shown:   per layer {l} unit{s} that get{v} a gradient, per sum {l} term{s} whose input is \
                 not 0 (--limit); the rest are summed up. Dropout is off and batch norm uses its \
                 running statistics, as in evaluation.",
                l = self.limit,
                s = if self.limit == 1 { "" } else { "s" },
                v = if self.limit == 1 { "s" } else { "" },
            ),
        ]
    }

    /// Every stage's vector (its shown units, a blank line after each), then the prediction
    /// and the loss.
    fn forward(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..self.stages().len() {
            lines.extend(self.forward_stage(i));
            lines.push(String::new());
        }
        let t = self.trace;
        match (t.target, &t.probabilities) {
            (Target::Class(y), Some(p)) => lines.extend(self.softmax_lines(y, p)),
            (Target::Value(y), _) => lines.extend(self.regression_lines(y)),
            _ => {}
        }
        lines
    }

    /// How stage `i` computes its vector, as its kind of layer writes it.
    fn forward_stage(&self, i: usize) -> Vec<String> {
        match &self.stages()[i].kind {
            StageKind::Linear {
                number,
                weight,
                inputs,
                outputs,
                ..
            } => self.forward_linear(
                i,
                *number,
                &format!("linear {inputs} → {outputs}; W{number} is {weight} in the model file"),
            ),
            StageKind::Activation { function, .. } => self.forward_activation(i, function),
            StageKind::BatchNorm { scale, shift } => self.forward_batch_norm(i, scale, shift),
            StageKind::Residual { skip, skip_stage } => self.forward_sum(i, skip, *skip_stage),
        }
    }

    /// Residual stage `i`: `r = a + f`, the block's input `skip` (made by stage `skip_stage`,
    /// or the input) plus the block's last value, on the shown units.
    fn forward_sum(&self, i: usize, skip: &str, skip_stage: Option<usize>) -> Vec<String> {
        let st = &self.stages()[i];
        let (input, f) = self.input_of(i);
        let a = skip_stage.map_or(&self.trace.inputs[..], |k| &self.stages()[k].value[..]);
        let mut lines = vec![format!(
            "{} = {skip} + {input}    (residual block: its input {skip} skips the block and is \
             added to what the block gives)",
            st.symbol
        )];
        for j in self.units(i) {
            lines.push(format!(
                "{}[{j}] = {skip}[{j}] + {input}[{j}] = {} + {} = {:.4}",
                st.symbol,
                num(a[j]),
                num(f[j]),
                st.value[j]
            ));
        }
        lines
    }

    /// Linear stage `i` (`z = W{k}·x + b{k}`, described by `about`): each shown unit's sum,
    /// then how many units are not shown.
    fn forward_linear(&self, i: usize, k: usize, about: &str) -> Vec<String> {
        let st = &self.stages()[i];
        let (input, _) = self.input_of(i);
        let units = self.units(i);
        let mut lines = vec![format!("{} = W{k}·{input} + b{k}    ({about})", st.symbol)];
        for &j in &units {
            lines.extend(self.linear_sum(i, k, j));
        }
        if st.value.len() > units.len() {
            lines.push(format!("… and {} more units", st.value.len() - units.len()));
        }
        lines
    }

    /// Unit `j` of linear stage `i`: its sum in symbols, in numbers (the terms not shown summed
    /// up) and its value.
    fn linear_sum(&self, i: usize, k: usize, j: usize) -> [String; 3] {
        let st = &self.stages()[i];
        let (_, a) = self.input_of(i);
        let of_unit = |w: &&ModelWeight| w.stage == i && w.row == j;
        let shown: Vec<&ModelWeight> = self
            .trace
            .weights
            .iter()
            .filter(|w| of_unit(w) && w.column.is_some())
            .collect();
        let bias = self
            .trace
            .weights
            .iter()
            .find(|w| of_unit(w) && w.column.is_none());
        let rest: f64 = self.weight(st).map_or(0.0, |w| {
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
        [
            format!("{name} = {} + b{k}[{j}]", sym.join(" + ")),
            format!("{pad} = {} + {}", val.join(" + "), num(b)),
            format!("{pad} = {:.4}", st.value[j]),
        ]
    }

    /// Activation stage `i`: `h = f(z)` on the shown units; for relu, how many are active.
    fn forward_activation(&self, i: usize, function: &str) -> Vec<String> {
        let st = &self.stages()[i];
        let (input, a) = self.input_of(i);
        let mut lines = vec![format!("{} = {function}({input})", st.symbol)];
        for j in self.units(i) {
            lines.push(format!(
                "{}[{j}] = {function}({input}[{j}]) = {function}({:.4}) = {:.4}",
                st.symbol, a[j], st.value[j]
            ));
        }
        if function == "relu" {
            let active = st.value.iter().filter(|&&v| v > 0.0).count();
            lines.push(format!(
                "{}: {active} of {} units active (> 0); the others pass no gradient back",
                st.symbol,
                st.value.len()
            ));
        }
        lines
    }

    /// Batch-norm stage `i` in evaluation: `n = z·s + t` on the shown units.
    fn forward_batch_norm(&self, i: usize, scale: &[f32], shift: &[f32]) -> Vec<String> {
        let st = &self.stages()[i];
        let (input, a) = self.input_of(i);
        let mut lines = vec![format!(
            "{} = {input}·s + t    (batch norm: s = γ/√(σ²_run + ε), t = β − μ_run·s)",
            st.symbol
        )];
        for j in self.units(i) {
            lines.push(format!(
                "{}[{j}] = {}·{} + {} = {:.4}",
                st.symbol,
                num(a[j]),
                num(scale[j]),
                num(shift[j]),
                st.value[j]
            ));
        }
        lines
    }

    /// Classification: the softmax (every class when there are at most 10, else the likeliest
    /// and the true one), the prediction and the cross-entropy loss.
    fn softmax_lines(&self, y: usize, p: &[f32]) -> Vec<String> {
        let classes = &self.net.spec().classes;
        let class = |c: usize| classes.get(c).map_or("", String::as_str);
        let z = &self.stages()[self.stages().len() - 1].symbol;
        let mut lines = vec![format!("p = softmax({z}):  p[c] = e^{z}[c] / Σ_m e^{z}[m]")];
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
            lines.push(format!(
                "{:<width$} = {:<10} class {:?}{}",
                format!("p[{c}]"),
                short(p[c]),
                class(c),
                if c == y { "  ← true class" } else { "" }
            ));
        }
        if shown.len() < p.len() {
            let largest_hidden = (0..p.len())
                .filter(|c| !shown.contains(c))
                .map(|c| p[c])
                .fold(0.0, f32::max);
            lines.push(format!(
                "… and {} more classes, each below p = {}",
                p.len() - shown.len(),
                short(largest_hidden)
            ));
        }
        let best = nabla::kernels::softmax::argmax(p);
        lines.push(format!(
            "prediction: class {:?} (p = {:.4})",
            class(best),
            p[best]
        ));
        lines.push(format!(
            "L = −log p[{y}] = −log {:.6} = {}",
            p[y],
            precise(self.trace.loss.into())
        ));
        lines
    }

    /// Regression: the prediction and the target, scaled and in the target's own units, and
    /// the squared error.
    fn regression_lines(&self, y: f32) -> Vec<String> {
        let last = &self.stages()[self.stages().len() - 1];
        let target = &self.file.preprocess.target;
        let original = |v: f32| f64::from(v) * target.scale + target.center;
        vec![
            format!(
                "ŷ = {}[0] = {:.4}, y = {:.4} (in the target's scaled units; in {}'s own: ŷ = {:.4}, y = {:.4})",
                last.symbol,
                last.value[0],
                y,
                target.name,
                original(last.value[0]),
                original(y)
            ),
            format!("L = (ŷ − y)² = {}", precise(self.trace.loss.into())),
        ]
    }

    /// Every stage's gradient from the loss down: the rule in vector form, then each shown
    /// unit (a blank line after each stage).
    fn backward(&self) -> Vec<String> {
        let stages = self.stages();
        let mut lines = Vec::new();
        for i in (0..stages.len()).rev() {
            let st = &stages[i];
            lines.push(self.vector_rule(i));
            let last = i + 1 == stages.len();
            let units: Vec<usize> = if last && st.value.len() <= 10 {
                (0..st.value.len()).collect()
            } else {
                self.units(i)
            };
            if units.len() < st.value.len() && last {
                lines.push(format!(
                    "(shown: {} of {} outputs)",
                    units.len(),
                    st.value.len()
                ));
            }
            for &j in &units {
                lines.push(self.backward_unit(i, j));
            }
            lines.push(String::new());
        }
        lines
    }

    /// `∂L/∂{stage i}[j]`, as the stage after it passes the gradient back: from the loss, as a
    /// sum over a linear layer's units, or through an elementwise stage's local gradient.
    fn backward_unit(&self, i: usize, j: usize) -> String {
        let stages = self.stages();
        let st = &stages[i];
        let g = precise(st.gradient[j].into());
        let Some(next) = stages.get(i + 1) else {
            return format!("∂L/∂{}[{j}] = {} = {g}", st.symbol, self.loss_formula(j));
        };
        let skips: Vec<String> = self
            .skips_from(i)
            .into_iter()
            .map(|r| format!("{} (∂L/∂{}[{j}], the skip)", num(r.gradient[j]), r.symbol))
            .collect();
        if is_linear(next) {
            let (terms, more, rest) = self.sum_terms(i, j);
            let mut vals: Vec<String> = terms.iter().map(|f| f.formula.clone()).collect();
            if more > 0 {
                vals.push(format!(
                    "({more} smaller {}: {})",
                    plural_terms(more),
                    num(rest as f32)
                ));
            }
            vals.extend(skips);
            return format!("∂L/∂{}[{j}] = {} = {g}", st.symbol, vals.join(" + "));
        }
        if let StageKind::Residual { .. } = next.kind {
            let mut vals = vec![num(next.gradient[j])];
            vals.extend(skips);
            return format!(
                "∂L/∂{}[{j}] = ∂L/∂{}[{j}]{} = {} = {g}",
                st.symbol,
                next.symbol,
                self.skip_terms(i, Some(j)),
                vals.join(" + ")
            );
        }
        let local = next.local.as_ref().map_or(f32::NAN, |l| l[j]);
        format!(
            "∂L/∂{}[{j}] = ∂L/∂{}[{j}] · {} = {} · {local:.4} = {g}",
            st.symbol,
            next.symbol,
            self.local_formula(i + 1, j).0,
            num(next.gradient[j]),
        )
    }

    /// Every shown weight: upstream × local = downstream, beside its finite difference.
    fn weight_table(&self) -> Table {
        let mut table = Table::new(&WEIGHT_COLUMNS);
        for w in &self.trace.weights {
            let w8 = &w.trace;
            table.rows.push(vec![
                w8.name.clone(),
                w.param.clone(),
                format!("∂L/∂{} = {}", w8.unit, precise(w8.upstream.into())),
                format!("{} = {:.4}", w8.local_name, w8.local),
                precise(w8.gradient.into()),
                precise(w8.numeric_gradient),
            ]);
        }
        table
    }

    /// Every parameter tensor's gradient checked whole, along its own direction.
    fn tensor_table(&self) -> Table {
        tensor_table(&self.trace.tensors)
    }
}

/// Every parameter tensor's gradient checked whole, along its own direction.
pub(super) fn tensor_table(tensors: &[TensorCheck]) -> Table {
    {
        let mut table = Table::new(&TENSOR_COLUMNS);
        table.caption = Some(format!(
            "Every parameter tensor, checked whole: with u = ∇/‖∇‖, (L(W + εu) − L(W − εu)) / 2ε should equal ‖∇‖ (ε = {}):",
            short(tensors.first().map_or(0.0, |c| c.epsilon))
        ));
        for tc in tensors {
            let shape: Vec<String> = tc.shape.iter().map(usize::to_string).collect();
            let gap = if tc.gradient_norm > 0.0 {
                format!(
                    "{:+.2} %",
                    100.0 * (tc.numeric_directional / tc.gradient_norm - 1.0)
                )
            } else {
                "(no gradient)".to_string()
            };
            table.rows.push(vec![
                tc.name.clone(),
                shape.join("×"),
                precise(tc.gradient_norm),
                precise(tc.numeric_directional),
                gap,
            ]);
        }
        table.note = Some(
            "(Finite differences are approximate: their error grows with ε², and a step can cross \
             a ReLU kink; a wrong gradient would be off by far more.)"
                .to_string(),
        );
        table
    }
}

impl View<'_> {
    /// The chosen weight's chain rule factor by factor (the first, a sum, with its largest
    /// terms), its product and the finite difference.
    fn chain_lines(&self, c: &Chain) -> Vec<String> {
        let names: Vec<&str> = c.factors.iter().map(|f| f.name.as_str()).collect();
        let mut lines = vec![format!("∂L/∂{} = {}", c.weight, names.join(" · "))];
        for (n, f) in c.factors.iter().enumerate() {
            lines.push(format!(
                "  {} = {} = {}",
                f.name,
                f.formula,
                precise(f.value)
            ));
            if n == 0 && !c.terms.is_empty() {
                lines.extend(sum_lines(c));
            }
        }
        let vals: Vec<String> = c.factors.iter().map(|f| num(f.value as f32)).collect();
        lines.push(format!(
            "∂L/∂{} = {} = {}   (engine's backward pass: {})",
            c.weight,
            vals.join(" · "),
            precise(c.product),
            precise(c.gradient.into())
        ));
        lines.push(format!(
            "finite difference: (L({w}+ε) − L({w}−ε)) / 2ε with ε = {} gives {}",
            self.trace.epsilon,
            precise(c.numeric_gradient),
            w = c.weight
        ));
        lines
    }

    /// `W ← W − lr·∂L/∂W` for the first shown unit of each layer and the chosen weight (every
    /// shown weight is in the JSON).
    fn update_lines(&self, c: &Chain) -> Vec<String> {
        let t = self.trace;
        let first_units: Vec<(usize, usize)> = (0..self.stages().len())
            .filter_map(|i| t.weights.iter().find(|w| w.stage == i).map(|w| (i, w.row)))
            .collect();
        t.weights
            .iter()
            .filter(|w| first_units.contains(&(w.stage, w.row)) || w.trace.name == c.weight)
            .map(|w| {
                format!(
                    "{:<12} ← {:.6} − {}·{} = {:.6}   (change {:+.3e})",
                    w.trace.name,
                    w.trace.value,
                    t.learning_rate,
                    num(w.trace.gradient),
                    w.trace.updated,
                    w.trace.updated - w.trace.value
                )
            })
            .collect()
    }

    /// The loss before and after one plain step, and what training's optimizer does instead.
    fn closing(&self) -> String {
        let count = self.net.params().count();
        let optimizer = self
            .file
            .training
            .get("optimizer")
            .and_then(|v| v.as_str())
            .filter(|o| *o != "sgd");
        format!(
            "One plain gradient step on this sample, applied to all {count} parameters, takes its loss from {} to {}.{}",
            precise(self.trace.loss.into()),
            precise(self.trace.loss_after.into()),
            optimizer.map_or(String::new(), |o| format!(
                " (Training used {o}, which scales each step by its own statistics; the gradient it starts from is this one.)"
            ))
        )
    }
}

/// The first factor's sum: its largest terms, the rest summed up, and how the gradients it
/// reads arise down from the loss.
fn sum_lines(c: &Chain) -> Vec<String> {
    let mut lines: Vec<String> = c
        .terms
        .iter()
        .map(|term| {
            format!(
                "      {} = {} = {}",
                term.name,
                term.formula,
                precise(term.value)
            )
        })
        .collect();
    if c.terms_not_shown > 0 {
        lines.push(format!(
            "      + {} smaller {} = {}",
            c.terms_not_shown,
            plural_terms(c.terms_not_shown),
            precise(c.terms_rest)
        ));
    }
    lines.push("    where, down from the loss:".to_string());
    for u in &c.upstream {
        lines.push(format!("      {u}"));
    }
    lines
}

/// Columns of the weight table.
const WEIGHT_COLUMNS: [Column; 6] = [
    Column {
        title: "weight",
        width: 12,
    },
    Column {
        title: "model file",
        width: 26,
    },
    Column {
        title: "upstream ∂L/∂z",
        width: 24,
    },
    Column {
        title: "× local ∂z/∂w",
        width: 20,
    },
    Column {
        title: "= downstream ∂L/∂w",
        width: 20,
    },
    Column {
        title: "finite difference",
        width: 0,
    },
];

/// Columns of the tensor check.
const TENSOR_COLUMNS: [Column; 5] = [
    Column {
        title: "tensor",
        width: 20,
    },
    Column {
        title: "shape",
        width: 10,
    },
    Column {
        title: "‖∂L/∂W‖",
        width: 14,
    },
    Column {
        title: "finite difference along ∇",
        width: 26,
    },
    Column {
        title: "gap",
        width: 0,
    },
];
