//! [`BatchNorm2d`]: batch normalisation of each channel of an image over the batch and every
//! pixel, with running statistics for evaluation (PyTorch's `nn.BatchNorm2d`; same tensor
//! names as [`super::BatchNorm1d`]).
//!
//! Training: `y = γ_c·(x − μ_c)/sqrt(σ²_c + ε) + β_c` with the batch's per-channel statistics.
//! Evaluation: `y = x·s_c + t_c` with `s = γ·(1/sqrt(σ²_run + ε))` and `t = β − μ_run·s`.

use super::buffers::{BufferId, Dtype};
use super::builder::Builder;
use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;

/// A batch-norm layer over the channels of an image.
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm2d {
    /// `γ`, shape `[C]`, starts at 1.
    pub weight: ParamId,
    /// `β`, shape `[C]`, starts at 0.
    pub bias: ParamId,
    /// Running mean, starts at 0.
    pub running_mean: BufferId,
    /// Running (unbiased) variance, starts at 1.
    pub running_var: BufferId,
    /// Channels normalised.
    pub features: usize,
    /// Added to the variance.
    pub eps: f32,
    /// Weight of each new batch in the running statistics.
    pub momentum: f32,
}

impl BatchNorm2d {
    /// Batch norm over `features` channels.
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
}

impl Module for BatchNorm2d {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let (g, b) = (tape.param(self.weight), tape.param(self.bias));
        if !ctx.is_training() {
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
            return tape.affine_channels(x, s, t);
        }
        let y = tape.batch_norm2d(x, g, b, self.eps)?;
        let (n, cols) = tape.shape(x);
        let running = (self.running_mean, self.running_var);
        if let (Some((mean, var)), Some((_, stats))) = (tape.batch_statistics(y), ctx.training()) {
            let values = n * cols / self.features.max(1);
            stats.record(running, self.momentum, values, mean, var);
        }
        Ok(y)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::BatchNorm2d {
                features: self.features,
                eps: self.eps,
                momentum: self.momentum,
            },
            params: vec![self.weight, self.bias],
            buffers: vec![self.running_mean, self.running_var],
        })
    }
}
