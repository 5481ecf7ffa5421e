//! [`Linear`]: `z = x·Wᵀ + b`, PyTorch's `nn.Linear`. The weight is `[out, in]` (so model files
//! load into PyTorch as they are) and `x·Wᵀ` reads it through strides, never transposed.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec, layer_error};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::{Graph, int};

/// The linear kind in a model file: `{"type": "linear", "in": 64, "out": 256}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearSpec {
    /// Inputs per sample.
    #[serde(rename = "in")]
    pub inputs: usize,
    /// Outputs per sample (neurons).
    #[serde(rename = "out")]
    pub outputs: usize,
}

impl LayerKind for LinearSpec {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn summary(&self) -> String {
        format!("linear {} → {}", self.inputs, self.outputs)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        vec![
            TensorSpec::param("weight", &[self.outputs, self.inputs]),
            TensorSpec::param("bias", &[self.outputs]),
        ]
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let (inputs, outputs) = (self.inputs, self.outputs);
        match input {
            Shape::Flat(width) if inputs != width => Err(layer_error(
                i,
                format!("a linear layer with {inputs} inputs follows a width of {width}"),
            )),
            Shape::Flat(_) if outputs == 0 => {
                Err(layer_error(i, "a linear layer needs at least one output"))
            }
            Shape::Flat(_) => Ok(Shape::Flat(outputs)),
            Shape::Image(s) => Err(layer_error(
                i,
                format!(
                    "a dense layer cannot take the {s} {}: put `flatten` before it",
                    if i == 0 {
                        "input image"
                    } else {
                        "image the layer before gives"
                    }
                ),
            )),
        }
    }

    fn needs_image(&self) -> bool {
        false
    }

    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        output.checked_len().map(|n| n as u64)
    }

    fn build(&self, b: &mut Builder, init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(Linear::new(b, self.inputs, self.outputs, init))
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        let (ws, w) = tensor("weight")?;
        let (bs, b) = tensor("bias")?;
        let w = g.f32s("weight", ws, w);
        let b = g.f32s("bias", bs, b);
        Ok(g.node("Gemm", &[x, &w, &b], vec![int("transB", 1)]))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Dense {
            inputs: self.inputs,
            outputs: self.outputs,
        }
    }

    fn weighted(&self) -> bool {
        true
    }
}

/// A fully connected layer: its weight `[out, in]` and bias `[out]`.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// `W`, shape `[out, in]`, named `weight`.
    pub weight: ParamId,
    /// `b`, shape `[out]`, named `bias` (starts at zero).
    pub bias: ParamId,
    /// Inputs per sample.
    pub inputs: usize,
    /// Outputs per sample.
    pub outputs: usize,
}

impl Linear {
    /// A layer of `inputs → outputs` whose weight is drawn by `init` from the builder's stream.
    pub fn new(b: &mut Builder, inputs: usize, outputs: usize, init: Init) -> Self {
        let weight = b.param("weight", &[outputs, inputs], |w, rng| {
            init.fill(w, inputs, outputs, rng)
        });
        let bias = b.param("bias", &[outputs], |_, _| {});
        Self {
            weight,
            bias,
            inputs,
            outputs,
        }
    }
}

impl Module for Linear {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        let w = tape.param(self.weight);
        let b = tape.param(self.bias);
        tape.linear(x, w, b)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::linear(self.inputs, self.outputs),
            params: vec![self.weight, self.bias],
            buffers: Vec::new(),
        })
    }
}
