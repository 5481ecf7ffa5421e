//! [`Dropout2d`]: dropout of whole feature maps, PyTorch's `nn.Dropout2d`, active only in
//! training (see the tape's `dropout_channels`).

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{
    ExplainView, LayerKind, TensorLookup, TensorSpec, image_input, layer_error, times,
};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;

/// The channel-dropout kind in a model file: `{"type": "dropout2d", "p": 0.2}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropout2dSpec {
    /// Probability of zeroing a channel, in `[0, 1)`.
    pub p: f32,
}

impl LayerKind for Dropout2dSpec {
    fn name(&self) -> &'static str {
        "dropout2d"
    }

    fn summary(&self) -> String {
        format!("dropout2d p={}", self.p)
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
        image_input(i, self.name(), input)?;
        Ok(input)
    }

    fn needs_image(&self) -> bool {
        true
    }

    /// The output and its mask.
    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(2, output)
    }

    fn build(&self, _b: &mut Builder, _init: Init, input: Shape) -> Box<dyn Module> {
        let channels = input.image().map_or(input.len(), |s| s.channels);
        Box::new(Dropout2d {
            p: self.p,
            channels,
        })
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
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// Zeroes each channel of each sample with probability `p` in training and scales the rest
/// by `1/(1 − p)`; hands its input on unchanged in evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout2d {
    /// Probability of zeroing a channel, in `[0, 1)`.
    pub p: f32,
    /// Channels of the input image.
    pub channels: usize,
}

impl Module for Dropout2d {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        match ctx.training() {
            Some((rng, _)) if self.p > 0.0 => tape.dropout_channels(x, self.p, self.channels, rng),
            _ => Ok(x),
        }
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::Dropout2d(Dropout2dSpec { p: self.p }),
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
