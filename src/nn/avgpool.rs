//! [`AvgPool2d`]: the mean of each window, PyTorch's `nn.AvgPool2d` (no padding).

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, times};
use super::maxpool::{pool_geometry, pool_onnx, pool_shape, pool_summary};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;
use crate::kernels::conv::PoolGeometry;

/// The average-pooling kind in a model file: `{"type": "avg_pool2d", "kernel": 2,
/// "stride": 2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2dSpec {
    /// Window side.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
}

impl LayerKind for AvgPool2dSpec {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn summary(&self) -> String {
        pool_summary(self.name(), self.kernel, self.stride)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        pool_shape(i, self.name(), (self.kernel, self.stride), input)
    }

    fn needs_image(&self) -> bool {
        true
    }

    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(1, output)
    }

    fn build(&self, _b: &mut Builder, _init: Init, input: Shape) -> Box<dyn Module> {
        Box::new(AvgPool2d {
            geometry: pool_geometry(input, self.kernel, self.stride),
        })
    }

    fn onnx(
        &self,
        g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(pool_onnx(g, "AveragePool", x, self.kernel, self.stride))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// Average pooling over windows of a fixed-size image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// The input image and the window's size and stride.
    pub geometry: PoolGeometry,
}

impl Module for AvgPool2d {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        tape.avg_pool2d(x, self.geometry)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::AvgPool2d(AvgPool2dSpec {
                kernel: self.geometry.kernel,
                stride: self.geometry.stride,
            }),
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
