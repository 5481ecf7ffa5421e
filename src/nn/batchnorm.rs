//! [`BatchNorm1d`]: batch normalisation over the rows of a `B × C` batch with running statistics
//! for evaluation (PyTorch's `BatchNorm1d`), and [`BatchStats`], the statistics of a training
//! step waiting to be folded into the running averages.
//!
//! Training: `y = γ·(x − μ_B)/sqrt(σ²_B + ε) + β` with the batch's mean and biased variance.
//! Evaluation: `y = x·s + t` with `s = γ·(1/sqrt(σ²_run + ε))` and `t = β − μ_run·s`, recorded on
//! the tape so that γ and β still get gradients (as `nabla explain --model` needs).

use serde::{Deserialize, Serialize};

use super::buffers::{BufferId, Buffers, Dtype};
use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, layer_error, times};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;

/// The 1-D batch-norm kind in a model file: `{"type": "batch_norm", "features": 64,
/// "eps": 1e-5, "momentum": 0.1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNormSpec {
    /// Features (columns) normalised.
    pub features: usize,
    /// Added to the variance (default 1e-5; finite, above 0).
    #[serde(default = "default_eps")]
    pub eps: f32,
    /// Weight of each new batch in the running statistics (default 0.1; in `[0, 1]`).
    #[serde(default = "default_momentum")]
    pub momentum: f32,
}

/// PyTorch's default `eps`.
pub(super) fn default_eps() -> f32 {
    1e-5
}

/// PyTorch's default `momentum`.
pub(super) fn default_momentum() -> f32 {
    0.1
}

impl BatchNormSpec {
    /// Batch norm over `features` with PyTorch's default `eps` and `momentum`.
    pub fn new(features: usize) -> Self {
        Self {
            features,
            eps: default_eps(),
            momentum: default_momentum(),
        }
    }
}

/// Refuses an `eps` that is not a positive finite number or a `momentum` outside `[0, 1]`
/// (layer `i`, kind `name`): either would make every normalised value NaN or infinite.
pub(super) fn check_settings(
    i: usize,
    name: &str,
    eps: f32,
    momentum: f32,
) -> Result<(), NablaError> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(layer_error(
            i,
            format!("{name} eps must be a finite number above 0, got {eps}"),
        ));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(layer_error(
            i,
            format!("{name} momentum must be in [0, 1], got {momentum}"),
        ));
    }
    Ok(())
}

/// The tensors of a batch norm over `features`: `weight`, `bias` (trained), `running_mean`,
/// `running_var` and PyTorch's i64 `num_batches_tracked`.
pub(super) fn batch_norm_tensors(features: usize) -> Vec<TensorSpec> {
    vec![
        TensorSpec::param("weight", &[features]),
        TensorSpec::param("bias", &[features]),
        TensorSpec::buffer("running_mean", &[features], 4),
        TensorSpec::buffer("running_var", &[features], 4),
        TensorSpec::buffer("num_batches_tracked", &[], 8),
    ]
}

/// Batch norm in evaluation mode as ONNX `x·s + t`, `s` and `t` computed in f32 as
/// [`BatchNorm1d`] computes them; per channel (`[1, C, 1, 1]`) for images.
pub(super) fn batch_norm_onnx(
    g: &mut Graph,
    tensor: &TensorLookup<'_>,
    eps: f32,
    x: &str,
    image: bool,
) -> Result<String, NablaError> {
    let (_, gamma) = tensor("weight")?;
    let (_, beta) = tensor("bias")?;
    let (_, mean) = tensor("running_mean")?;
    let (_, var) = tensor("running_var")?;
    let s: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(&g, &v)| g * (1.0 / (v + eps).sqrt()))
        .collect();
    let t: Vec<f32> = beta
        .iter()
        .zip(mean)
        .zip(&s)
        .map(|((&b, &m), &s)| b - m * s)
        .collect();
    let dims = match image {
        true => vec![1, s.len(), 1, 1],
        false => vec![1, s.len()],
    };
    let s = g.f32s("bn_scale", &dims, &s);
    let t = g.f32s("bn_shift", &dims, &t);
    let y = g.node("Mul", &[x, &s], vec![]);
    Ok(g.node("Add", &[&y, &t], vec![]))
}

impl LayerKind for BatchNormSpec {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn summary(&self) -> String {
        let (f, e, m) = (self.features, self.eps, self.momentum);
        format!("batch_norm {f} (eps {e}, momentum {m})")
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        batch_norm_tensors(self.features)
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let features = self.features;
        match input {
            Shape::Flat(width) if features == width => {
                check_settings(i, "batch_norm", self.eps, self.momentum)?;
                Ok(input)
            }
            Shape::Flat(width) => Err(layer_error(
                i,
                format!("batch norm over {features} features follows a width of {width}"),
            )),
            Shape::Image(s) => Err(layer_error(
                i,
                format!(
                    "1-D batch norm after the {s} image: use batch_norm2d (`batchnorm` of an \
                     image in a layer list) or flatten first"
                ),
            )),
        }
    }

    fn needs_image(&self) -> bool {
        false
    }

    /// The output and the normalised values kept for backward.
    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(2, output)
    }

    fn build(&self, b: &mut Builder, _init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(BatchNorm1d::new(b, self.features, self.eps, self.momentum))
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        batch_norm_onnx(g, tensor, self.eps, x, false)
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Normalise { eps: self.eps }
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// A batch-norm layer: scale `γ` (`weight`), shift `β` (`bias`) and the running mean and
/// variance (`running_mean`, `running_var`, plus PyTorch's `num_batches_tracked`).
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm1d {
    /// `γ`, shape `[C]`, starts at 1.
    pub weight: ParamId,
    /// `β`, shape `[C]`, starts at 0.
    pub bias: ParamId,
    /// Running mean, starts at 0.
    pub running_mean: BufferId,
    /// Running (unbiased) variance, starts at 1.
    pub running_var: BufferId,
    /// Features (columns) normalised.
    pub features: usize,
    /// Added to the variance.
    pub eps: f32,
    /// Weight of each new batch in the running statistics.
    pub momentum: f32,
}

impl BatchNorm1d {
    /// Batch norm over `features` columns.
    pub fn new(b: &mut Builder, features: usize, eps: f32, momentum: f32) -> Self {
        let weight = b.param("weight", &[features], |g, _| g.fill(1.0));
        let bias = b.param("bias", &[features], |_, _| {});
        let running_mean = b.buffer("running_mean", &[features], Dtype::F32, 0.0);
        let running_var = b.buffer("running_var", &[features], Dtype::F32, 1.0);
        b.buffer("num_batches_tracked", &[], Dtype::I64, 0.0);
        Self {
            weight,
            bias,
            running_mean,
            running_var,
            features,
            eps,
            momentum,
        }
    }

    /// The evaluation-mode map `x·s + t` from the running statistics, on the tape.
    fn forward_eval(
        &self,
        tape: &mut Tape,
        x: Var,
        g: Var,
        b: Var,
        ctx: &Ctx,
    ) -> Result<Var, NablaError> {
        let (mean, var) = (ctx.buffer(self.running_mean), ctx.buffer(self.running_var));
        let eps = self.eps;
        let inv = tape.input_with(1, var.len(), |buf| {
            for (o, v) in buf.iter_mut().zip(var.data()) {
                *o = 1.0 / (v + eps).sqrt();
            }
        });
        let mean = tape.input(mean);
        let s = tape.mul(g, inv)?;
        let ms = tape.mul(mean, s)?;
        let t = tape.sub(b, ms)?;
        tape.affine_rows(x, s, t)
    }
}

impl Module for BatchNorm1d {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let (g, b) = (tape.param(self.weight), tape.param(self.bias));
        if !ctx.is_training() {
            return self.forward_eval(tape, x, g, b, ctx);
        }
        let y = tape.batch_norm(x, g, b, self.eps)?;
        if let (Some((mean, var)), Some((_, stats))) = (tape.batch_statistics(y), ctx.training()) {
            let running = (self.running_mean, self.running_var);
            stats.record(running, self.momentum, tape.shape(x).0, mean, var);
        }
        Ok(y)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::BatchNorm(BatchNormSpec {
                features: self.features,
                eps: self.eps,
                momentum: self.momentum,
            }),
            params: vec![self.weight, self.bias],
            buffers: vec![self.running_mean, self.running_var],
        })
    }
}

/// One batch-norm layer's statistics from one micro-batch.
#[derive(Clone, Debug, Default)]
struct Slot {
    mean_id: BufferId,
    var_id: BufferId,
    momentum: f32,
    rows: usize,
    mean: Vec<f32>,
    var: Vec<f32>,
}

/// The batch mean and biased variance of every batch-norm layer in one training forward pass,
/// in the order the layers ran. Kept by the caller between steps so nothing is allocated.
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    slots: Vec<Slot>,
    used: usize,
}

impl BatchStats {
    /// Starts a forward pass: the slots are overwritten in order.
    pub(crate) fn begin(&mut self) {
        self.used = 0;
    }

    /// Keeps one layer's batch `mean` and biased `var` over `rows` values per feature, for the
    /// running statistics `(running_mean, running_var)` updated with `momentum`.
    pub(crate) fn record(
        &mut self,
        (mean_id, var_id): (BufferId, BufferId),
        momentum: f32,
        rows: usize,
        mean: &[f32],
        var: &[f32],
    ) {
        if self.used == self.slots.len() {
            self.slots.push(Slot::default());
        }
        let slot = &mut self.slots[self.used];
        self.used += 1;
        slot.mean_id = mean_id;
        slot.var_id = var_id;
        slot.momentum = momentum;
        slot.rows = rows;
        slot.mean.clear();
        slot.mean.extend_from_slice(mean);
        slot.var.clear();
        slot.var.extend_from_slice(var);
    }

    /// Folds these statistics into the running averages in `buffers`:
    /// `r ← (1 − m)·r + m·batch`, the variance made unbiased (`· n/(n − 1)`), as PyTorch does.
    pub fn fold_into(&self, buffers: &mut Buffers) {
        for slot in &self.slots[..self.used] {
            let n = slot.rows as f32;
            let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
            let m = slot.momentum;
            for (rm, b) in buffers
                .get_mut(slot.mean_id)
                .data_mut()
                .iter_mut()
                .zip(&slot.mean)
            {
                *rm = (1.0 - m) * *rm + m * b;
            }
            for (rv, v) in buffers
                .get_mut(slot.var_id)
                .data_mut()
                .iter_mut()
                .zip(&slot.var)
            {
                *rv = (1.0 - m) * *rv + m * v * unbias;
            }
        }
    }
}

/// Evaluation-mode batch norm as a per-feature affine map `y = x·s + t`:
/// `s = γ·(1 / sqrt(σ²_run + ε))`, `t = β − μ_run·s`, rounded exactly as the forward pass
/// computes them on the tape.
pub fn eval_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g * (1.0 / (v + eps).sqrt()))
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}
