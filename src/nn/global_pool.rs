//! [`GlobalAvgPool`]: the mean of each channel, PyTorch's `nn.AdaptiveAvgPool2d(1)`; the
//! output is a `C × 1 × 1` image (flatten it before a dense layer, as in PyTorch).

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, image_input, times};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::{ImageShape, Shape};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;

/// The global-average-pooling kind (no settings: `{"type": "global_avg_pool"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GlobalAvgPoolSpec;

impl LayerKind for GlobalAvgPoolSpec {
    fn name(&self) -> &'static str {
        "global_avg_pool"
    }

    fn summary(&self) -> String {
        self.name().to_string()
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let s = image_input(i, self.name(), input)?;
        Ok(Shape::Image(ImageShape::new(s.channels, 1, 1)))
    }

    fn needs_image(&self) -> bool {
        true
    }

    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(1, output)
    }

    fn build(&self, _b: &mut Builder, _init: Init, input: Shape) -> Box<dyn Module> {
        let channels = input.image().map_or(input.len(), |s| s.channels);
        Box::new(GlobalAvgPool { channels })
    }

    fn onnx(
        &self,
        g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(g.node("GlobalAveragePool", &[x], vec![]))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// Global average pooling over the planes of `channels` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalAvgPool {
    /// Channels of the input image.
    pub channels: usize,
}

impl Module for GlobalAvgPool {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        tape.global_avg_pool(x, self.channels)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::GlobalAvgPool,
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
