//! `ModelSpec`: the architecture of a network as a serde value. The CLI builds it from flags,
//! the model file stores it as JSON, and [`crate::nn::Sequential::build`] builds the network from
//! it. Its JSON form is a contract shared with other tools:
//! `{"inputs": 64, "layers": [{"type": "linear", "in": 64, "out": 256}, {"type": "relu"}, ...],
//! "task": "classification", "classes": ["0", "1", ...]}`.

use serde::{Deserialize, Serialize};

use super::shape::{ImageShape, Shape};
use super::{
    AvgPool2d, BatchNorm1d, BatchNorm2d, Builder, Conv2d, Dropout, Dropout2d, Flatten,
    GlobalAvgPool, Init, Linear, MaxPool2d, Module,
};
use crate::error::NablaError;
use crate::kernels::activation::Activation;
use crate::kernels::conv::{ConvGeometry, PoolGeometry};
pub use crate::task::Task;

/// One layer of a sequential network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// `z = x·Wᵀ + b` with `W` of shape `[out, in]`.
    Linear {
        /// Inputs per sample.
        #[serde(rename = "in")]
        inputs: usize,
        /// Outputs per sample (neurons).
        #[serde(rename = "out")]
        outputs: usize,
    },
    /// ReLU activation.
    Relu,
    /// Logistic sigmoid activation.
    Sigmoid,
    /// Hyperbolic tangent activation.
    Tanh,
    /// Leaky ReLU activation.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f32,
    },
    /// GELU activation (exact, erf-based).
    Gelu,
    /// Inverted dropout, active only in training.
    Dropout {
        /// Probability of zeroing an element.
        p: f32,
    },
    /// 1-D batch normalisation over the batch, with running statistics for evaluation
    /// (PyTorch's `BatchNorm1d`).
    BatchNorm {
        /// Features (columns) normalised.
        features: usize,
        /// Added to the variance (default 1e-5).
        #[serde(default = "default_bn_eps")]
        eps: f32,
        /// Weight of each new batch in the running statistics (default 0.1).
        #[serde(default = "default_bn_momentum")]
        momentum: f32,
    },
    /// 2-D convolution with a `kernel × kernel` window (PyTorch's `Conv2d`, weight
    /// `[out, in, kernel, kernel]`, bias `[out]`).
    Conv2d {
        /// Input channels.
        #[serde(rename = "in")]
        in_channels: usize,
        /// Output channels (filters).
        #[serde(rename = "out")]
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Step between windows (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zeros added on every side (default 0).
        #[serde(default)]
        padding: usize,
        /// Spacing of the kernel's taps (default 1).
        #[serde(default = "one")]
        dilation: usize,
    },
    /// Max pooling over `kernel × kernel` windows moved by `stride` (PyTorch's `MaxPool2d`).
    MaxPool2d {
        /// Window side.
        kernel: usize,
        /// Step between windows (PyTorch's default: the window side).
        stride: usize,
    },
    /// Average pooling over `kernel × kernel` windows moved by `stride` (`AvgPool2d`).
    AvgPool2d {
        /// Window side.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// The mean of every channel: a `C × 1 × 1` image (`AdaptiveAvgPool2d(1)`).
    GlobalAvgPool,
    /// Batch normalisation of each channel over the batch and every pixel (`BatchNorm2d`).
    BatchNorm2d {
        /// Channels normalised.
        features: usize,
        /// Added to the variance (default 1e-5).
        #[serde(default = "default_bn_eps")]
        eps: f32,
        /// Weight of each new batch in the running statistics (default 0.1).
        #[serde(default = "default_bn_momentum")]
        momentum: f32,
    },
    /// Dropout of whole channels, active only in training (`Dropout2d`).
    Dropout2d {
        /// Probability of zeroing a channel.
        p: f32,
    },
    /// An image read as `C·H·W` features in C,H,W order (`nn.Flatten`).
    Flatten,
}

fn one() -> usize {
    1
}

fn default_bn_eps() -> f32 {
    1e-5
}

fn default_bn_momentum() -> f32 {
    0.1
}

impl LayerSpec {
    /// What the layer is, in words: `linear`, `relu`, `dropout`, `batch_norm`, ...
    pub fn name(&self) -> &'static str {
        match self {
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::BatchNorm { .. } => "batch_norm",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::MaxPool2d { .. } => "max_pool2d",
            LayerSpec::AvgPool2d { .. } => "avg_pool2d",
            LayerSpec::GlobalAvgPool => "global_avg_pool",
            LayerSpec::BatchNorm2d { .. } => "batch_norm2d",
            LayerSpec::Dropout2d { .. } => "dropout2d",
            LayerSpec::Flatten => "flatten",
            other => other.activation().map_or("activation", |f| f.name()),
        }
    }

    /// The layer in a few words, with its settings: `linear 64 → 256`, `dropout p=0.2`, ...
    pub fn summary(&self) -> String {
        match *self {
            LayerSpec::Linear { inputs, outputs } => format!("linear {inputs} → {outputs}"),
            LayerSpec::BatchNorm {
                features,
                eps,
                momentum,
            } => format!("batch_norm {features} (eps {eps}, momentum {momentum})"),
            LayerSpec::Dropout { p } => format!("dropout p={p}"),
            LayerSpec::LeakyRelu { slope } => format!("leaky_relu slope={slope}"),
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
            } => {
                let mut s = format!("conv2d {in_channels} → {out_channels} {kernel}×{kernel}");
                for (word, v, default) in [
                    ("stride", stride, 1),
                    ("pad", padding, 0),
                    ("dilation", dilation, 1),
                ] {
                    if v != default {
                        s += &format!(" {word} {v}");
                    }
                }
                s
            }
            LayerSpec::MaxPool2d { kernel, stride } | LayerSpec::AvgPool2d { kernel, stride } => {
                let stride = if stride == kernel {
                    String::new()
                } else {
                    format!(" stride {stride}")
                };
                format!("{} {kernel}×{kernel}{stride}", self.name())
            }
            LayerSpec::BatchNorm2d { features, eps, .. } => {
                format!("batch_norm2d {features} (eps {eps})")
            }
            LayerSpec::Dropout2d { p } => format!("dropout2d p={p}"),
            other => other.name().to_string(),
        }
    }

    /// Trainable parameters the layer holds.
    pub fn parameters(&self) -> usize {
        match *self {
            LayerSpec::Linear { inputs, outputs } => inputs * outputs + outputs,
            LayerSpec::BatchNorm { features, .. } | LayerSpec::BatchNorm2d { features, .. } => {
                2 * features
            }
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                ..
            } => out_channels * in_channels * kernel * kernel + out_channels,
            _ => 0,
        }
    }

    /// The activation this layer applies, if it is an activation layer.
    pub fn activation(&self) -> Option<Activation> {
        match *self {
            LayerSpec::Relu => Some(Activation::Relu),
            LayerSpec::Sigmoid => Some(Activation::Sigmoid),
            LayerSpec::Tanh => Some(Activation::Tanh),
            LayerSpec::LeakyRelu { slope } => Some(Activation::LeakyRelu { slope }),
            LayerSpec::Gelu => Some(Activation::Gelu),
            _ => None,
        }
    }

    /// Builds the layer this spec describes with `b`, for samples of shape `input` (a linear or
    /// convolution layer's weights drawn by `init`): the one place that maps a kind of layer in
    /// a model file to its [`Module`]. `input` must be the shape [`LayerSpec::output_shape`]
    /// accepted.
    pub fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module> {
        let image = input.image().unwrap_or(ImageShape::new(input.len(), 1, 1));
        let pool = |kernel, stride| PoolGeometry {
            channels: image.channels,
            height: image.height,
            width: image.width,
            kernel,
            stride,
        };
        match *self {
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                ..
            } => {
                let g = ConvGeometry {
                    channels: image.channels,
                    height: image.height,
                    width: image.width,
                    kernel,
                    stride,
                    padding,
                    dilation,
                };
                Box::new(Conv2d::new(b, g, out_channels, init))
            }
            LayerSpec::MaxPool2d { kernel, stride } => Box::new(MaxPool2d {
                geometry: pool(kernel, stride),
            }),
            LayerSpec::AvgPool2d { kernel, stride } => Box::new(AvgPool2d {
                geometry: pool(kernel, stride),
            }),
            LayerSpec::GlobalAvgPool => Box::new(GlobalAvgPool {
                channels: image.channels,
            }),
            LayerSpec::BatchNorm2d {
                features,
                eps,
                momentum,
            } => Box::new(BatchNorm2d::new(b, features, eps, momentum)),
            LayerSpec::Dropout2d { p } => Box::new(Dropout2d {
                p,
                channels: image.channels,
            }),
            LayerSpec::Flatten => Box::new(Flatten),
            LayerSpec::Linear { inputs, outputs } => {
                Box::new(Linear::new(b, inputs, outputs, init))
            }
            LayerSpec::Dropout { p } => Box::new(Dropout { p }),
            LayerSpec::BatchNorm {
                features,
                eps,
                momentum,
            } => Box::new(BatchNorm1d::new(b, features, eps, momentum)),
            LayerSpec::Relu => Box::new(Activation::Relu),
            LayerSpec::Sigmoid => Box::new(Activation::Sigmoid),
            LayerSpec::Tanh => Box::new(Activation::Tanh),
            LayerSpec::LeakyRelu { slope } => Box::new(Activation::LeakyRelu { slope }),
            LayerSpec::Gelu => Box::new(Activation::Gelu),
        }
    }

    /// The bytes of the tensors this layer holds as F32 (`None` on overflow), known before
    /// building it: a model file's data must hold at least this much before anything is
    /// allocated for the layer.
    pub fn tensor_bytes(&self) -> Option<u64> {
        let elements = match *self {
            LayerSpec::Linear { inputs, outputs } => (inputs as u64)
                .checked_mul(outputs as u64)?
                .checked_add(outputs as u64)?,
            // weight, bias, running mean and variance.
            LayerSpec::BatchNorm { features, .. } => (features as u64).checked_mul(4)?,
            _ => 0,
        };
        elements.checked_mul(4)
    }

    /// The activation layer for `f`.
    pub fn from_activation(f: Activation) -> Self {
        match f {
            Activation::Relu => LayerSpec::Relu,
            Activation::Sigmoid => LayerSpec::Sigmoid,
            Activation::Tanh => LayerSpec::Tanh,
            Activation::LeakyRelu { slope } => LayerSpec::LeakyRelu { slope },
            Activation::Gelu => LayerSpec::Gelu,
        }
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
            layers.push(LayerSpec::Linear {
                inputs: prev,
                outputs: h,
            });
            if batch_norm {
                layers.push(LayerSpec::BatchNorm {
                    features: h,
                    eps: default_bn_eps(),
                    momentum: default_bn_momentum(),
                });
            }
            layers.push(LayerSpec::from_activation(activation));
            if dropout > 0.0 {
                layers.push(LayerSpec::Dropout { p: dropout });
            }
            prev = h;
        }
        layers.push(LayerSpec::Linear {
            inputs: prev,
            outputs,
        });
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
            .find_map(|l| match l {
                LayerSpec::Linear { outputs, .. } => Some(*outputs),
                _ => None,
            })
            .unwrap_or(self.inputs)
    }

    /// Widths of the hidden linear layers (every linear layer but the last).
    pub fn hidden(&self) -> Vec<usize> {
        let widths: Vec<usize> = self
            .layers
            .iter()
            .filter_map(|l| match l {
                LayerSpec::Linear { outputs, .. } => Some(*outputs),
                _ => None,
            })
            .collect();
        widths[..widths.len().saturating_sub(1)].to_vec()
    }

    /// The activation that follows layer `i` before the next linear or convolution layer, if
    /// any (it picks a weighted layer's initialisation).
    pub fn activation_after(&self, i: usize) -> Option<Activation> {
        self.layers
            .get(i + 1..)?
            .iter()
            .take_while(|l| !matches!(l, LayerSpec::Linear { .. } | LayerSpec::Conv2d { .. }))
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
            && s.len() != self.inputs
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
        spec.layers[2] = LayerSpec::Linear {
            inputs: 5,
            outputs: 2,
        };
        assert!(spec.validate().is_err());
        assert!(
            ModelSpec::mlp(3, &[0], Activation::Relu, 2)
                .validate()
                .is_err()
        );
    }
}
