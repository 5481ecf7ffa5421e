//! [`Sequential`]: layers applied one after another, built from a [`ModelSpec`]. Layer `i` names
//! its tensors `{prefix}.{i}.…`, so a network built at the prefix `layers` has PyTorch's names for
//! an `nn.Sequential` held in an attribute `layers` (`layers.0.weight`, ...).

use super::builder::Builder;
use super::init::Init;
use super::module::{Ctx, Module, Traced};
use super::spec::ModelSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;

/// A list of layers, each a [`Module`], and the spec they were built from.
pub struct Sequential {
    spec: ModelSpec,
    layers: Vec<Box<dyn Module>>,
    prefix: String,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("spec", &self.spec)
            .finish()
    }
}

impl Sequential {
    /// Builds the layers of `spec` with `b` (layer `i` under the sub-prefix `i`). Each linear
    /// layer's weights follow `init` when given, else the activation after it (He for the ReLU
    /// family, Glorot otherwise).
    pub fn build(
        spec: &ModelSpec,
        b: &mut Builder,
        init: Option<Init>,
    ) -> Result<Self, NablaError> {
        spec.validate()?;
        let shapes = spec.shapes()?;
        let inputs = std::iter::once(spec.input()).chain(shapes);
        let layers = spec
            .layers
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (layer, input))| {
                let scheme = init.unwrap_or_else(|| Init::for_activation(spec.activation_after(i)));
                layer.build(&mut b.pp(i), scheme, input)
            })
            .collect();
        Ok(Self {
            spec: spec.clone(),
            layers,
            prefix: b.path(""),
        })
    }

    /// The spec the layers were built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The full name of layer `i`'s tensor `name` (`layers.0.weight`).
    pub fn tensor_name(&self, i: usize, name: &str) -> String {
        format!("{}{i}.{name}", self.prefix)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Module for Sequential {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        self.layers
            .iter()
            .try_fold(x, |h, layer| layer.forward(tape, h, ctx))
    }

    /// One step per layer of the spec, in order (a layer that does nothing in evaluation, like
    /// dropout, hands on its input's var); the last output is the network's.
    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        self.layers
            .iter()
            .try_fold(x, |h, layer| layer.forward_traced(tape, h, ctx, trace))
    }
}
