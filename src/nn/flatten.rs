//! [`Flatten`]: an image `C × H × W` becomes `C·H·W` features in C,H,W order, as
//! `torch.flatten(x, 1)` gives them. Images are already stored that way, one per row, so the
//! layer changes only the shape the next layer sees: it records nothing on the tape.

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;

/// Reads an image as flat features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, _tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        Ok(x)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::Flatten,
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
