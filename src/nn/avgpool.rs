//! [`AvgPool2d`]: the mean of each window, PyTorch's `nn.AvgPool2d` (no padding).

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::kernels::conv::PoolGeometry;

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
            spec: LayerSpec::AvgPool2d {
                kernel: self.geometry.kernel,
                stride: self.geometry.stride,
            },
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
