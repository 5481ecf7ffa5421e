//! [`Flatten`]: an image `C × H × W` becomes `C·H·W` features in C,H,W order, as
//! `torch.flatten(x, 1)` gives them. Images are already stored that way, one per row, so the
//! layer changes only the shape the next layer sees: it records nothing on the tape.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{ExplainView, LayerKind, TensorLookup, TensorSpec};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::Shape;
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::{Graph, int};

/// The flatten kind (no settings: `{"type": "flatten"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlattenSpec;

impl LayerKind for FlattenSpec {
    fn name(&self) -> &'static str {
        "flatten"
    }

    fn summary(&self) -> String {
        self.name().to_string()
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, _i: usize, input: Shape) -> Result<Shape, NablaError> {
        Ok(Shape::Flat(input.len()))
    }

    fn needs_image(&self) -> bool {
        false
    }

    /// Nothing: it records nothing on the tape.
    fn activations_per_row(&self, _input: Shape, _output: Shape) -> Option<u64> {
        Some(0)
    }

    fn build(&self, _b: &mut Builder, _init: Init, _input: Shape) -> Box<dyn Module> {
        Box::new(Flatten)
    }

    fn onnx(
        &self,
        g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(g.node("Flatten", &[x], vec![int("axis", 1)]))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

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
