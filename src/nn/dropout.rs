//! [`Dropout`]: inverted dropout, active only in training (see the tape's `dropout` op).

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, layer_error, times};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;

/// The dropout kind in a model file: `{"type": "dropout", "p": 0.2}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropoutSpec {
    /// Probability of zeroing an element, in `[0, 1)`.
    pub p: f32,
}

impl LayerKind for DropoutSpec {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn summary(&self) -> String {
        format!("dropout p={}", self.p)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let p = self.p;
        if !(0.0..1.0).contains(&p) {
            return Err(layer_error(
                i,
                format!("dropout probability must be in [0, 1), got {p}"),
            ));
        }
        Ok(input)
    }

    fn needs_image(&self) -> bool {
        false
    }

    /// The output and its mask.
    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(2, output)
    }

    fn build(&self, _b: &mut Builder, _init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(Dropout { p: self.p })
    }

    /// Nothing: dropout is the identity at inference.
    fn onnx(
        &self,
        _g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(x.to_string())
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Hidden
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// Zeroes each element with probability `p` in training and scales the rest by `1/(1 − p)`;
/// hands its input on unchanged in evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1)`.
    pub p: f32,
}

impl Module for Dropout {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        match ctx.training() {
            Some((rng, _)) if self.p > 0.0 => tape.dropout(x, self.p, rng),
            _ => Ok(x),
        }
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::Dropout(DropoutSpec { p: self.p }),
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
