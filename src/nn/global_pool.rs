//! [`GlobalAvgPool`]: the mean of each channel, PyTorch's `nn.AdaptiveAvgPool2d(1)`; the
//! output is a `C × 1 × 1` image (flatten it before a dense layer, as in PyTorch).

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;

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
