//! [`Dropout`]: inverted dropout, active only in training (see the tape's `dropout` op).

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;

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
            spec: LayerSpec::Dropout { p: self.p },
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
