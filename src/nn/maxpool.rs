//! [`MaxPool2d`]: the largest value of each window, PyTorch's `nn.MaxPool2d` (no padding); the
//! gradient goes back to each window's arg-max.

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::kernels::conv::PoolGeometry;

/// Max pooling over windows of a fixed-size image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// The input image and the window's size and stride.
    pub geometry: PoolGeometry,
}

impl Module for MaxPool2d {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        tape.max_pool2d(x, self.geometry)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::MaxPool2d {
                kernel: self.geometry.kernel,
                stride: self.geometry.stride,
            },
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
