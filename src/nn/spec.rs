//! `ModelSpec`: the architecture of a network as a serde value. The CLI builds it from flags,
//! the model file stores it as JSON, and [`crate::nn::Sequential::build`] builds the network from
//! it. Its JSON form is a contract shared with other tools:
//! `{"inputs": 64, "layers": [{"type": "linear", "in": 64, "out": 256}, {"type": "relu"}, ...],
//! "task": "classification", "classes": ["0", "1", ...]}`.

use serde::{Deserialize, Serialize};

use super::activation::LeakyReluSpec;
use super::avgpool::AvgPool2dSpec;
use super::batchnorm::BatchNormSpec;
use super::batchnorm2d::BatchNorm2dSpec;
use super::conv::Conv2dSpec;
use super::dropout::DropoutSpec;
use super::dropout2d::Dropout2dSpec;
use super::flatten::FlattenSpec;
use super::global_pool::GlobalAvgPoolSpec;
use super::kind::{LayerBytes, LayerKind, TensorSpec};
use super::linear::LinearSpec;
use super::maxpool::MaxPool2dSpec;
use super::residual::ResidualSpec;
use super::shape::{ImageShape, Shape};
use super::{Builder, Init, Module};
use crate::error::NablaError;
use crate::kernels::activation::Activation;
pub use crate::task::Task;

/// One layer of a sequential network: which built-in kind it is, with the kind's settings.
/// Everything about a kind lives in the kind's own type ([`LayerKind`], reached through
/// [`LayerSpec::kind`]); this enum only names the kinds for serde (`"type": "linear"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// `z = x·Wᵀ + b` with `W` of shape `[out, in]`.
    Linear(LinearSpec),
    /// ReLU activation.
    Relu,
    /// Logistic sigmoid activation.
    Sigmoid,
    /// Hyperbolic tangent activation.
    Tanh,
    /// Leaky ReLU activation.
    LeakyRelu(LeakyReluSpec),
    /// GELU activation (exact, erf-based).
    Gelu,
    /// Inverted dropout, active only in training.
    Dropout(DropoutSpec),
    /// 1-D batch normalisation over the batch, with running statistics for evaluation
    /// (PyTorch's `BatchNorm1d`).
    BatchNorm(BatchNormSpec),
    /// 2-D convolution with a `kernel × kernel` window (PyTorch's `Conv2d`).
    Conv2d(Conv2dSpec),
    /// Max pooling over `kernel × kernel` windows moved by `stride` (PyTorch's `MaxPool2d`).
    MaxPool2d(MaxPool2dSpec),
    /// Average pooling over `kernel × kernel` windows moved by `stride` (`AvgPool2d`).
    AvgPool2d(AvgPool2dSpec),
    /// The mean of every channel: a `C × 1 × 1` image (`AdaptiveAvgPool2d(1)`).
    GlobalAvgPool,
    /// Batch normalisation of each channel over the batch and every pixel (`BatchNorm2d`).
    BatchNorm2d(BatchNorm2dSpec),
    /// Dropout of whole channels, active only in training (`Dropout2d`).
    Dropout2d(Dropout2dSpec),
    /// An image read as `C·H·W` features in C,H,W order (`nn.Flatten`).
    Flatten,
    /// `y = x + f(x)` with `f` a block of layers that gives back the shape it reads.
    Residual(ResidualSpec),
}

impl LayerSpec {
    /// The kind of layer, which knows everything about it: the one `match` over kinds.
    pub fn kind(&self) -> &dyn LayerKind {
        match self {
            LayerSpec::Linear(k) => k,
            LayerSpec::Relu => &Activation::Relu,
            LayerSpec::Sigmoid => &Activation::Sigmoid,
            LayerSpec::Tanh => &Activation::Tanh,
            LayerSpec::LeakyRelu(k) => k,
            LayerSpec::Gelu => &Activation::Gelu,
            LayerSpec::Dropout(k) => k,
            LayerSpec::BatchNorm(k) => k,
            LayerSpec::Conv2d(k) => k,
            LayerSpec::MaxPool2d(k) => k,
            LayerSpec::AvgPool2d(k) => k,
            LayerSpec::GlobalAvgPool => &GlobalAvgPoolSpec,
            LayerSpec::BatchNorm2d(k) => k,
            LayerSpec::Dropout2d(k) => k,
            LayerSpec::Flatten => &FlattenSpec,
            LayerSpec::Residual(k) => k,
        }
    }

    /// What the layer is, in words: `linear`, `relu`, `dropout`, `batch_norm`, ...
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The layer in a few words, with its settings: `linear 64 → 256`, `dropout p=0.2`, ...
    pub fn summary(&self) -> String {
        self.kind().summary()
    }

    /// Trainable parameters the layer holds (saturating at `usize::MAX`).
    pub fn parameters(&self) -> usize {
        let n = self
            .kind()
            .tensors()
            .iter()
            .filter(|t| t.trainable)
            .try_fold(0u64, |acc, t| acc.checked_add(t.elements()?));
        n.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The tensors the layer holds (see [`LayerKind::tensors`]).
    pub fn tensors(&self) -> Vec<TensorSpec> {
        self.kind().tensors()
    }

    /// The activation this layer applies, if it is an activation layer.
    pub fn activation(&self) -> Option<Activation> {
        self.kind().activation()
    }

    /// True for the layers that read an image (convolution, pooling, 2-D batch norm and
    /// channel dropout).
    pub fn needs_image(&self) -> bool {
        self.kind().needs_image()
    }

    /// The shape this layer gives for samples of shape `input`, or why it cannot take them
    /// (`i` is the layer's index, for the message).
    pub fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        self.kind().output_shape(i, input)
    }

    /// Builds the layer this spec describes with `b`, for samples of shape `input` (a linear or
    /// convolution layer's weights drawn by `init`). `input` must be the shape
    /// [`LayerSpec::output_shape`] accepted.
    pub fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module> {
        self.kind().build(b, init, input)
    }

    /// The bytes of the tensors this layer holds (`None` on overflow), known before building
    /// it: a model file's data must hold at least this much before anything is allocated for
    /// the layer.
    pub fn tensor_bytes(&self) -> Option<u64> {
        self.kind()
            .tensors()
            .iter()
            .try_fold(0u64, |acc, t| acc.checked_add(t.bytes()?))
    }

    /// The layer's parameter, buffer and per-sample activation bytes for samples of shape
    /// `input` giving `output` (`None` on overflow).
    pub fn bytes(&self, input: Shape, output: Shape) -> Option<LayerBytes> {
        let kind = self.kind();
        let mut b = LayerBytes::default();
        for t in kind.tensors() {
            let bytes = t.bytes()?;
            match t.trainable {
                true => b.parameters = b.parameters.checked_add(bytes)?,
                false => b.buffers = b.buffers.checked_add(bytes)?,
            }
        }
        b.activations_per_row = kind.activations_per_row(input, output)?.checked_mul(4)?;
        Some(b)
    }

    /// The activation layer for `f`.
    pub fn from_activation(f: Activation) -> Self {
        match f {
            Activation::Relu => LayerSpec::Relu,
            Activation::Sigmoid => LayerSpec::Sigmoid,
            Activation::Tanh => LayerSpec::Tanh,
            Activation::LeakyRelu { slope } => LayerSpec::LeakyRelu(LeakyReluSpec { slope }),
            Activation::Gelu => LayerSpec::Gelu,
        }
    }

    /// The linear layer of `inputs → outputs`.
    pub fn linear(inputs: usize, outputs: usize) -> Self {
        LayerSpec::Linear(LinearSpec { inputs, outputs })
    }

    /// `(inputs, outputs)` when this is a linear layer.
    pub fn as_linear(&self) -> Option<(usize, usize)> {
        if let LayerSpec::Linear(l) = self {
            Some((l.inputs, l.outputs))
        } else {
            None
        }
    }

    /// True for the layers with weights drawn at initialisation (linear, convolution), which
    /// take the activation after them into account.
    pub fn is_weighted(&self) -> bool {
        self.kind().weighted()
    }
}

/// The architecture of a feed-forward network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Features per sample.
    pub inputs: usize,
    /// The layers in order.
    pub layers: Vec<LayerSpec>,
    /// The shape of one input sample when it is an image (`[C, H, W]`; `inputs` is then
    /// `C·H·W`); absent for flat features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<ImageShape>,
    /// Classification or regression.
    #[serde(default)]
    pub task: Task,
    /// Class names in output order (empty for regression).
    #[serde(default)]
    pub classes: Vec<String>,
}

impl ModelSpec {
    /// A multilayer perceptron: `inputs → hidden[0] → ... → outputs`, with `activation` after
    /// every hidden linear layer and none after the output layer (softmax lives in the loss).
    pub fn mlp(inputs: usize, hidden: &[usize], activation: Activation, outputs: usize) -> Self {
        Self::mlp_with(inputs, hidden, activation, outputs, false, 0.0)
    }

    /// [`ModelSpec::mlp`] with optional batch normalisation after each hidden linear layer
    /// (before its activation) and dropout with probability `dropout` after each hidden
    /// activation.
    pub fn mlp_with(
        inputs: usize,
        hidden: &[usize],
        activation: Activation,
        outputs: usize,
        batch_norm: bool,
        dropout: f32,
    ) -> Self {
        let mut layers = Vec::new();
        let mut prev = inputs;
        for &h in hidden {
            layers.push(LayerSpec::linear(prev, h));
            if batch_norm {
                layers.push(LayerSpec::BatchNorm(BatchNormSpec::new(h)));
            }
            layers.push(LayerSpec::from_activation(activation));
            if dropout > 0.0 {
                layers.push(LayerSpec::Dropout(DropoutSpec { p: dropout }));
            }
            prev = h;
        }
        layers.push(LayerSpec::linear(prev, outputs));
        Self {
            inputs,
            layers,
            input_shape: None,
            task: Task::Classification,
            classes: (0..outputs).map(|i| i.to_string()).collect(),
        }
    }

    /// The network `text` describes in words (see [`crate::nn::layers_text`]) for samples of
    /// `inputs` values, read as `image` when given and some layer needs an image (a stack of
    /// dense layers reads the values flat). Classification, classes `0..outputs`.
    pub fn from_layers(
        text: &str,
        inputs: usize,
        image: Option<ImageShape>,
    ) -> Result<Self, NablaError> {
        let flat = crate::nn::layers_text::parse(text, Shape::Flat(inputs));
        let input_shape = match (flat, image) {
            (Ok(_), _) | (Err(_), None) => None,
            (Err(_), Some(s)) => Some(s),
        };
        let input = input_shape.map_or(Shape::Flat(inputs), Shape::Image);
        let layers = crate::nn::layers_text::parse(text, input)?;
        let mut spec = Self {
            inputs,
            layers,
            input_shape,
            task: Task::Classification,
            classes: Vec::new(),
        };
        spec.classes = (0..spec.outputs()).map(|i| i.to_string()).collect();
        Ok(spec)
    }

    /// Outputs per sample: the last linear layer's width.
    pub fn outputs(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| l.as_linear().map(|(_, outputs)| outputs))
            .unwrap_or(self.inputs)
    }

    /// Widths of the hidden linear layers (every linear layer but the last).
    pub fn hidden(&self) -> Vec<usize> {
        let widths: Vec<usize> = self
            .layers
            .iter()
            .filter_map(|l| l.as_linear().map(|(_, outputs)| outputs))
            .collect();
        widths[..widths.len().saturating_sub(1)].to_vec()
    }

    /// The activation that follows layer `i` before the next linear or convolution layer, if
    /// any (it picks a weighted layer's initialisation).
    pub fn activation_after(&self, i: usize) -> Option<Activation> {
        self.layers
            .get(i + 1..)?
            .iter()
            .take_while(|l| !l.is_weighted())
            .find_map(LayerSpec::activation)
    }

    /// The first activation used, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.layers.iter().find_map(LayerSpec::activation)
    }

    /// The shape of one input sample: the image of `input_shape`, or `inputs` flat features.
    pub fn input(&self) -> Shape {
        self.input_shape
            .map_or(Shape::Flat(self.inputs), Shape::Image)
    }

    /// The shape every layer gives, in order (the last is the network's output), or the first
    /// layer that does not fit what it is given.
    pub fn shapes(&self) -> Result<Vec<Shape>, NablaError> {
        let mut shape = self.input();
        self.layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                shape = layer.output_shape(i, shape)?;
                Ok(shape)
            })
            .collect()
    }

    /// The bytes the network needs, summed over its layers (see [`LayerSpec::bytes`]), or why
    /// they cannot be counted (a layer that does not fit, or sizes beyond 2^64 bytes).
    pub fn bytes(&self) -> Result<LayerBytes, NablaError> {
        let shapes = self.shapes()?;
        let inputs = std::iter::once(self.input()).chain(shapes.iter().copied());
        let mut total = LayerBytes::default();
        for (i, ((layer, input), output)) in self
            .layers
            .iter()
            .zip(inputs)
            .zip(shapes.iter())
            .enumerate()
        {
            total = layer
                .bytes(input, *output)
                .and_then(|b| total.checked_add(b))
                .ok_or_else(|| {
                    NablaError::Usage(format!(
                        "layer {i} ({}): the network needs more than 2^64 bytes",
                        layer.summary()
                    ))
                })?;
        }
        Ok(total)
    }

    /// Checks that every layer fits what the one before gives (sizes positive, channels and
    /// widths matching, kernels inside their inputs) and that the network ends in flat outputs
    /// matching the class names.
    pub fn validate(&self) -> Result<(), NablaError> {
        if self.inputs == 0 {
            return Err(NablaError::Usage(
                "the model needs at least one input".into(),
            ));
        }
        if let Some(s) = self.input_shape
            && s.checked_len() != Some(self.inputs)
        {
            return Err(NablaError::Usage(format!(
                "an input image of {s} holds {} values, the model has {} inputs",
                s.len(),
                self.inputs
            )));
        }
        let shapes = self.shapes()?;
        if !self
            .layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Linear { .. }))
        {
            return Err(NablaError::Usage("the model has no linear layer".into()));
        }
        let width = match shapes.last() {
            Some(Shape::Flat(w)) => *w,
            other => {
                let s = other.map_or(self.input(), |s| *s);
                return Err(NablaError::Usage(format!(
                    "the model ends in a {s} image: end it with flatten and a dense layer"
                )));
            }
        };
        if self.task == Task::Classification && self.classes.len() != width {
            return Err(NablaError::Usage(format!(
                "{} class names for {width} outputs",
                self.classes.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_the_documented_contract() {
        let spec = ModelSpec::mlp(3, &[4], Activation::LeakyRelu { slope: 0.1 }, 2);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"inputs":3,"layers":[{"type":"linear","in":3,"out":4},{"type":"leaky_relu","slope":0.1},{"type":"linear","in":4,"out":2}],"task":"classification","classes":["0","1"]}"#
        );
        let back: ModelSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(spec.hidden(), vec![4]);
        assert_eq!(spec.outputs(), 2);
    }

    #[test]
    fn validate_rejects_mismatched_layers() {
        let mut spec = ModelSpec::mlp(3, &[4], Activation::Relu, 2);
        spec.layers[2] = LayerSpec::linear(5, 2);
        assert!(spec.validate().is_err());
        assert!(
            ModelSpec::mlp(3, &[0], Activation::Relu, 2)
                .validate()
                .is_err()
        );
    }
}
