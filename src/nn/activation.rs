//! Activation functions as layers: an [`Activation`] is a [`Module`] with no parameters and the
//! [`LayerKind`] of `relu`, `sigmoid`, `tanh`, `gelu` and (through [`LeakyReluSpec`], its
//! settings in a model file) `leaky_relu`.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, layer_error};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::{Graph, float};
use crate::kernels::activation::Activation;

/// How `nabla explain` writes this function's local derivative: each kind says it itself.
impl Activation {
    /// The derivative applied to `arg` (`σ'(z1[0])`, `relu'(z1[0])`).
    pub fn derivative_symbol(&self, arg: &str) -> String {
        match self {
            Activation::Sigmoid => format!("σ'({arg})"),
            Activation::Relu
            | Activation::Tanh
            | Activation::LeakyRelu { .. }
            | Activation::Gelu => {
                format!("{}'({arg})", self.name())
            }
        }
    }

    /// Why the derivative at input `z` (written `input`) with output `h` (written `output`)
    /// has its value: the side of the kink, or the formula in terms of the output.
    pub fn derivative_reason(&self, input: &str, z: f32, output: &str, h: f32) -> String {
        match self {
            Activation::Relu | Activation::LeakyRelu { .. } => {
                format!("{input} = {z:.4} {} 0", if z > 0.0 { ">" } else { "≤" })
            }
            Activation::Sigmoid => format!("h(1 − h) with h = {output} = {h:.4}"),
            Activation::Tanh => format!("1 − h² with h = {output} = {h:.4}"),
            Activation::Gelu => format!("Φ(z) + z·φ(z) at z = {z:.4}"),
        }
    }
}

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

/// The leaky ReLU kind in a model file: `{"type": "leaky_relu", "slope": 0.01}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakyReluSpec {
    /// Slope for negative inputs (finite).
    pub slope: f32,
}

impl LeakyReluSpec {
    fn function(&self) -> Activation {
        Activation::LeakyRelu { slope: self.slope }
    }
}

impl LayerKind for Activation {
    fn name(&self) -> &'static str {
        Activation::name(self)
    }

    fn summary(&self) -> String {
        match self {
            Activation::LeakyRelu { slope } => format!("leaky_relu slope={slope}"),
            Activation::Relu | Activation::Sigmoid | Activation::Tanh | Activation::Gelu => {
                Activation::name(self).to_string()
            }
        }
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        if let Activation::LeakyRelu { slope } = self
            && !slope.is_finite()
        {
            return Err(layer_error(
                i,
                format!("the leaky_relu slope must be a finite number, got {slope}"),
            ));
        }
        Ok(input)
    }

    fn needs_image(&self) -> bool {
        false
    }

    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        output.checked_len().map(|n| n as u64)
    }

    fn build(&self, _b: &mut Builder, _init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(*self)
    }

    fn onnx(
        &self,
        g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(match *self {
            Activation::Relu => g.node("Relu", &[x], vec![]),
            Activation::Sigmoid => g.node("Sigmoid", &[x], vec![]),
            Activation::Tanh => g.node("Tanh", &[x], vec![]),
            Activation::LeakyRelu { slope } => {
                g.node("LeakyRelu", &[x], vec![float("alpha", slope)])
            }
            Activation::Gelu => gelu(g, x),
        })
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Function(*self)
    }

    fn weighted(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(*self)
    }
}

/// `x·Φ(x)` with `Φ(x) = (1 + erf(x/√2)) / 2` (opset 17 has no `Gelu`).
fn gelu(g: &mut Graph, x: &str) -> String {
    let r = g.f32s("inv_sqrt2", &[], &[std::f32::consts::FRAC_1_SQRT_2]);
    let one = g.f32s("one", &[], &[1.0]);
    let half = g.f32s("half", &[], &[0.5]);
    let z = g.node("Mul", &[x, &r], vec![]);
    let e = g.node("Erf", &[&z], vec![]);
    let e = g.node("Add", &[&e, &one], vec![]);
    let e = g.node("Mul", &[&e, &half], vec![]);
    g.node("Mul", &[x, &e], vec![])
}

impl LayerKind for LeakyReluSpec {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }

    fn summary(&self) -> String {
        self.function().summary()
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        self.function().output_shape(i, input)
    }

    fn needs_image(&self) -> bool {
        false
    }

    fn activations_per_row(&self, input: Shape, output: Shape) -> Option<u64> {
        self.function().activations_per_row(input, output)
    }

    fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module> {
        self.function().build(b, init, input)
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        self.function().onnx(g, tensor, x)
    }

    fn explain_view(&self) -> ExplainView {
        self.function().explain_view()
    }

    fn weighted(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.function())
    }
}
