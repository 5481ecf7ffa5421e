//! [`Dropout2d`]: dropout of whole feature maps, PyTorch's `nn.Dropout2d`, active only in
//! training (see the tape's `dropout_channels`).

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;

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
            spec: LayerSpec::Dropout2d { p: self.p },
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
