//! [`Linear`]: `z = x·Wᵀ + b`, PyTorch's `nn.Linear`. The weight is `[out, in]` (so model files
//! load into PyTorch as they are) and `x·Wᵀ` reads it through strides, never transposed.

use super::builder::Builder;
use super::init::Init;
use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;

/// A fully connected layer: its weight `[out, in]` and bias `[out]`.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// `W`, shape `[out, in]`, named `weight`.
    pub weight: ParamId,
    /// `b`, shape `[out]`, named `bias` (starts at zero).
    pub bias: ParamId,
    /// Inputs per sample.
    pub inputs: usize,
    /// Outputs per sample.
    pub outputs: usize,
}

impl Linear {
    /// A layer of `inputs → outputs` whose weight is drawn by `init` from the builder's stream.
    pub fn new(b: &mut Builder, inputs: usize, outputs: usize, init: Init) -> Self {
        let weight = b.param("weight", &[outputs, inputs], |w, rng| {
            init.fill(w, inputs, outputs, rng)
        });
        let bias = b.param("bias", &[outputs], |_, _| {});
        Self {
            weight,
            bias,
            inputs,
            outputs,
        }
    }
}

impl Module for Linear {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        let w = tape.param(self.weight);
        let b = tape.param(self.bias);
        tape.linear(x, w, b)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::Linear {
                inputs: self.inputs,
                outputs: self.outputs,
            },
            params: vec![self.weight, self.bias],
            buffers: Vec::new(),
        })
    }
}
