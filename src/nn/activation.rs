//! Activation functions as layers: an [`Activation`] is a [`Module`] with no parameters.

use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::kernels::activation::Activation;

impl Module for Activation {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        Ok(tape.activation(x, *self))
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::from_activation(*self),
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
