//! [`LayerKind`]: everything nabla knows about one built-in kind of layer, said once, in the
//! kind's own file (src/nn/linear.rs, conv.rs, ...): its name and summary, the tensors it holds
//! (names, shapes, byte sizes), the shape it gives, the values it keeps per sample, its
//! [`Module`], its ONNX nodes and what `nabla explain` shows of it.
//!
//! [`crate::nn::LayerSpec`] is the serde-tagged list of kinds; its one `match`
//! ([`crate::nn::LayerSpec::kind`]) has no wildcard, so a new kind is one file implementing this
//! trait plus one variant and one line there, and the compiler asks for every method.
//! This module must not know any particular kind.

use super::builder::Builder;
use super::init::Init;
use super::module::Module;
use super::shape::{ImageShape, Shape};
use super::spec::LayerSpec;
use crate::error::NablaError;
use crate::io::onnx::graph::Graph;
use crate::kernels::activation::Activation;

/// A tensor a layer holds: its name under the layer (`weight`), its shape and whether training
/// updates it (a parameter) or not (a buffer such as `running_mean`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name under the layer's prefix (`layers.0.` + name).
    pub name: String,
    /// Its shape (PyTorch's).
    pub shape: Vec<usize>,
    /// Bytes per element (4 for f32, 8 for PyTorch's i64 `num_batches_tracked`).
    pub element_bytes: u64,
    /// True for a trained parameter, false for a buffer.
    pub trainable: bool,
}

impl TensorSpec {
    /// A trained f32 parameter.
    pub fn param(name: impl Into<String>, shape: &[usize]) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            element_bytes: 4,
            trainable: true,
        }
    }

    /// A buffer (saved, not trained) of `element_bytes` per element.
    pub fn buffer(name: impl Into<String>, shape: &[usize], element_bytes: u64) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            element_bytes,
            trainable: false,
        }
    }

    /// Elements (`None` on overflow).
    pub fn elements(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
    }

    /// Bytes (`None` on overflow).
    pub fn bytes(&self) -> Option<u64> {
        self.elements()?.checked_mul(self.element_bytes)
    }
}

/// The bytes a layer needs, known from its spec before anything is allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerBytes {
    /// Trained parameters (their gradients and each optimizer slot take as much again).
    pub parameters: u64,
    /// Saved buffers that are not trained (running statistics).
    pub buffers: u64,
    /// Values kept per sample by one forward pass (a batch of `n` rows keeps `n` times this;
    /// a training pass as much again for their gradients).
    pub activations_per_row: u64,
}

impl LayerBytes {
    /// The optimizer's state for `slots` values per parameter (Adam: 2, momentum: 1).
    pub fn optimizer_state(&self, slots: u64) -> Option<u64> {
        self.parameters.checked_mul(slots)
    }

    /// The sum of two layers' bytes, `None` on overflow.
    pub fn checked_add(self, other: LayerBytes) -> Option<LayerBytes> {
        Some(LayerBytes {
            parameters: self.parameters.checked_add(other.parameters)?,
            buffers: self.buffers.checked_add(other.buffers)?,
            activations_per_row: self
                .activations_per_row
                .checked_add(other.activations_per_row)?,
        })
    }
}

/// What `nabla explain` shows of a layer (its own view, chosen by the kind).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExplainView {
    /// A weighted sum `z = W·x + b` of `inputs` values into `outputs`.
    Dense {
        /// Inputs per sample.
        inputs: usize,
        /// Outputs per sample.
        outputs: usize,
    },
    /// A per-feature normalisation with its running statistics and `eps`.
    Normalise {
        /// Added to the variance.
        eps: f32,
    },
    /// An element-wise function with its local derivative.
    Function(Activation),
    /// The identity at evaluation (dropout): not shown.
    Hidden,
    /// An image layer, shown by the convolution page with its output image only.
    Image,
    /// The sum `r = x + f(x)` closing a residual block: its terms are the block's input (the
    /// skip) and the block's last value; the skip's gradient gains `∂L/∂r`.
    Sum,
}

/// Looks up one of the layer's tensors by its name under the layer (`weight`): its shape and
/// values.
pub type TensorLookup<'a> = dyn Fn(&str) -> Result<(&'a [usize], &'a [f32]), NablaError> + 'a;

/// One built-in kind of layer, as its spec describes it (see the module documentation).
pub trait LayerKind: std::fmt::Debug + Send + Sync {
    /// What the layer is, in words: `linear`, `relu`, `batch_norm`, `conv2d`, ...
    fn name(&self) -> &'static str;

    /// The layer in a few words, with its settings: `linear 64 → 256`, `dropout p=0.2`, ...
    fn summary(&self) -> String;

    /// The tensors it holds, in the order it makes them (model files and PyTorch name them
    /// `layers.{i}.{name}`).
    fn tensors(&self) -> Vec<TensorSpec>;

    /// The shape it gives for samples of shape `input`, or why it cannot take them, including
    /// settings out of range (`i` is the layer's index, for the message). Every size is
    /// computed with checked arithmetic.
    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError>;

    /// True when it reads an image (convolution, pooling, 2-D batch norm, channel dropout).
    fn needs_image(&self) -> bool;

    /// Values one forward pass keeps per sample, from the shapes it reads and gives (`None` on
    /// overflow): its output, and what its backward needs beside (patches, masks, arg-maxes).
    fn activations_per_row(&self, input: Shape, output: Shape) -> Option<u64>;

    /// Builds its [`Module`] with `b` for samples of shape `input` (weights drawn by `init`);
    /// `input` must be a shape [`LayerKind::output_shape`] accepted.
    fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module>;

    /// Appends its evaluation-mode ONNX nodes reading `x` to `g` and returns the output's name
    /// (`x` itself for a layer that is the identity at inference); `tensor` gives its trained
    /// tensors by name.
    fn onnx(&self, g: &mut Graph, tensor: &TensorLookup<'_>, x: &str)
    -> Result<String, NablaError>;

    /// What `nabla explain` shows of it.
    fn explain_view(&self) -> ExplainView;

    /// True when its weights are drawn at initialisation (linear, convolution): their scale
    /// depends on the activation after it.
    fn weighted(&self) -> bool;

    /// The activation it applies, if it is an activation layer.
    fn activation(&self) -> Option<Activation> {
        None
    }

    /// The layers inside it, each with the name prefix of its tensors under this layer's
    /// (`block.0.` in a residual block); none for a plain layer.
    fn children(&self) -> Vec<(String, &LayerSpec)> {
        Vec::new()
    }
}

/// `layer {i}: {text}` as a usage error.
pub(crate) fn layer_error(i: usize, text: impl std::fmt::Display) -> NablaError {
    NablaError::Usage(format!("layer {i}: {text}"))
}

/// The image a layer named `name` (index `i`) reads, or the error for flat input.
pub(crate) fn image_input(i: usize, name: &str, input: Shape) -> Result<ImageShape, NablaError> {
    match input {
        Shape::Image(s) => Ok(s),
        Shape::Flat(n) => Err(super::shape::flat_input(i, name, n)),
    }
}

/// `n` values of `input.len()` each, checked.
pub(crate) fn times(n: u64, shape: Shape) -> Option<u64> {
    n.checked_mul(shape.checked_len()? as u64)
}
