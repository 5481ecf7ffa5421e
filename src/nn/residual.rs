//! [`Residual`]: `y = x + f(x)`, a block of built-in layers whose output is added to the input
//! it read (the skip connection of ResNets and transformers). In a model file it is
//! `{"type": "residual", "layers": [...]}`; the block's layer `j` names its tensors
//! `block.{j}.…` under the residual's own prefix (`layers.2.block.0.weight`), as a PyTorch module
//! holding an `nn.Sequential` in an attribute `block` would. The block must give back the shape
//! it reads.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, layer_error, times};
use super::module::{Ctx, LayerInfo, Module, Traced};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;
use crate::kernels::activation::Activation;

/// The residual kind: the layers of its block, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualSpec {
    /// The block `f` of `y = x + f(x)`.
    pub layers: Vec<LayerSpec>,
}

impl ResidualSpec {
    /// The shape each layer of the block gives for samples of shape `input` (the residual
    /// being layer `i`), or why one cannot take what it is given.
    pub fn shapes(&self, i: usize, input: Shape) -> Result<Vec<Shape>, NablaError> {
        let mut shape = input;
        let mut shapes = Vec::with_capacity(self.layers.len());
        for (j, layer) in self.layers.iter().enumerate() {
            shape = layer
                .output_shape(j, shape)
                .map_err(|e| layer_error(i, format!("in its residual block, {e}")))?;
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// The activation after the block's layer `j` before the next weighted layer, if any.
    fn activation_after(&self, j: usize) -> Option<Activation> {
        self.layers
            .get(j + 1..)?
            .iter()
            .take_while(|l| !l.is_weighted())
            .find_map(LayerSpec::activation)
    }
}

impl LayerKind for ResidualSpec {
    fn name(&self) -> &'static str {
        "residual"
    }

    fn summary(&self) -> String {
        let inner: Vec<String> = self.layers.iter().map(LayerSpec::summary).collect();
        format!("residual x + f(x), f = [{}]", inner.join(", "))
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        let each = self.layers.iter().enumerate().flat_map(|(j, layer)| {
            layer.tensors().into_iter().map(move |t| TensorSpec {
                name: format!("block.{j}.{}", t.name),
                ..t
            })
        });
        each.collect()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        if self.layers.is_empty() {
            return Err(layer_error(i, "a residual block needs at least one layer"));
        }
        let last = *self.shapes(i, input)?.last().unwrap_or(&input);
        if last != input {
            return Err(layer_error(
                i,
                format!(
                    "a residual block must give back the shape it reads ({input}) to add it, \
                     its layers give {last}"
                ),
            ));
        }
        Ok(input)
    }

    fn needs_image(&self) -> bool {
        self.layers.iter().any(LayerSpec::needs_image)
    }

    /// Its layers' values, and the sum `x + f(x)`.
    fn activations_per_row(&self, input: Shape, output: Shape) -> Option<u64> {
        let shapes = self.shapes(0, input).ok()?;
        let inputs = std::iter::once(input).chain(shapes.iter().copied());
        let mut n = times(1, output)?;
        for ((layer, from), to) in self.layers.iter().zip(inputs).zip(shapes.iter()) {
            n = n.checked_add(layer.kind().activations_per_row(from, *to)?)?;
        }
        Some(n)
    }

    /// The block's weighted layers are drawn for the activation after them inside the block;
    /// one with none after it inside the block takes `init`, the rule of the layer after the
    /// residual.
    fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module> {
        let mut block = b.pp("block");
        let mut shape = input;
        let mut layers = Vec::with_capacity(self.layers.len());
        for (j, layer) in self.layers.iter().enumerate() {
            let scheme = self
                .activation_after(j)
                .map_or(init, |f| Init::for_activation(Some(f)));
            layers.push(layer.build(&mut block.pp(j), scheme, shape));
            shape = layer.output_shape(j, shape).unwrap_or(shape);
        }
        Box::new(Residual {
            spec: self.clone(),
            layers,
        })
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        let mut h = x.to_string();
        for (j, layer) in self.layers.iter().enumerate() {
            let lookup = |name: &str| tensor(&format!("block.{j}.{name}"));
            h = layer.kind().onnx(g, &lookup, &h)?;
        }
        Ok(g.node("Add", &[x, &h], vec![]))
    }

    /// Its layers show one by one, then the sum.
    fn explain_view(&self) -> ExplainView {
        ExplainView::Sum
    }

    /// It ends what an activation before it initialises: the block's input also reaches the
    /// sum unchanged.
    fn weighted(&self) -> bool {
        true
    }

    fn children(&self) -> Vec<(String, &LayerSpec)> {
        let each = self.layers.iter().enumerate();
        each.map(|(j, layer)| (format!("block.{j}."), layer))
            .collect()
    }
}

/// `y = x + f(x)` with `f` its layers applied in order.
pub struct Residual {
    spec: ResidualSpec,
    layers: Vec<Box<dyn Module>>,
}

impl std::fmt::Debug for Residual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Residual")
            .field("spec", &self.spec)
            .finish()
    }
}

impl Module for Residual {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let h = self
            .layers
            .iter()
            .try_fold(x, |h, layer| layer.forward(tape, h, ctx))?;
        tape.add(x, h)
    }

    fn layer(&self) -> Option<LayerInfo> {
        let inner = self.layers.iter().filter_map(|l| l.layer());
        let (mut params, mut buffers) = (Vec::new(), Vec::new());
        for info in inner {
            params.extend(info.params);
            buffers.extend(info.buffers);
        }
        Some(LayerInfo {
            spec: LayerSpec::Residual(self.spec.clone()),
            params,
            buffers,
        })
    }

    /// Each layer of the block as its own step, then the sum as the residual's step.
    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        let h = self
            .layers
            .iter()
            .try_fold(x, |h, layer| layer.forward_traced(tape, h, ctx, trace))?;
        let y = tape.add(x, h)?;
        trace.push(Traced {
            input: x,
            output: y,
            layer: self.layer(),
        });
        Ok(y)
    }
}
