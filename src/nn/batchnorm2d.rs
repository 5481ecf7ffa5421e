//! [`BatchNorm2d`]: batch normalisation of each channel of an image over the batch and every
//! pixel, with running statistics for evaluation (PyTorch's `nn.BatchNorm2d`; same tensor
//! names as [`super::BatchNorm1d`]).
//!
//! Training: `y = γ_c·(x − μ_c)/sqrt(σ²_c + ε) + β_c` with the batch's per-channel statistics.
//! Evaluation: `y = x·s_c + t_c` with `s = γ·(1/sqrt(σ²_run + ε))` and `t = β − μ_run·s`.

use serde::{Deserialize, Serialize};

use super::batchnorm::{
    batch_norm_onnx, batch_norm_tensors, check_settings, default_eps, default_momentum,
};
use super::buffers::{BufferId, Dtype};
use super::builder::Builder;
use super::init::Init;
use super::kind::{
    ExplainView, LayerKind, TensorLookup, TensorSpec, image_input, layer_error, times,
};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;

/// The 2-D batch-norm kind in a model file: `{"type": "batch_norm2d", "features": 32,
/// "eps": 1e-5, "momentum": 0.1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm2dSpec {
    /// Channels normalised.
    pub features: usize,
    /// Added to the variance (default 1e-5; finite, above 0).
    #[serde(default = "default_eps")]
    pub eps: f32,
    /// Weight of each new batch in the running statistics (default 0.1; in `[0, 1]`).
    #[serde(default = "default_momentum")]
    pub momentum: f32,
}

impl LayerKind for BatchNorm2dSpec {
    fn name(&self) -> &'static str {
        "batch_norm2d"
    }

    fn summary(&self) -> String {
        format!("batch_norm2d {} (eps {})", self.features, self.eps)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        batch_norm_tensors(self.features)
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let s = image_input(i, self.name(), input)?;
        if self.features != s.channels {
            let f = self.features;
            return Err(layer_error(
                i,
                format!("batch_norm2d over {f} channels follows the {s} image"),
            ));
        }
        check_settings(i, self.name(), self.eps, self.momentum)?;
        Ok(input)
    }

    fn needs_image(&self) -> bool {
        true
    }

    /// The output and the normalised values kept for backward.
    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(2, output)
    }

    fn build(&self, b: &mut Builder, _init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(BatchNorm2d::new(b, self.features, self.eps, self.momentum))
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        batch_norm_onnx(g, tensor, self.eps, x, true)
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

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
            spec: LayerSpec::BatchNorm2d(BatchNorm2dSpec {
                features: self.features,
                eps: self.eps,
                momentum: self.momentum,
            }),
            params: vec![self.weight, self.bias],
            buffers: vec![self.running_mean, self.running_var],
        })
    }
}
