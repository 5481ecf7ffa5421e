//! `ModelSpec`: the architecture of a network as a serde value. The CLI builds it from flags,
//! the model file stores it as JSON, and [`crate::nn::Sequential::new`] builds the network from
//! it. Its JSON form is a contract shared with other tools:
//! `{"inputs": 64, "layers": [{"type": "linear", "in": 64, "out": 256}, {"type": "relu"}, ...],
//! "task": "classification", "classes": ["0", "1", ...]}`.

use serde::{Deserialize, Serialize};

use super::{BatchNorm1d, Builder, Dropout, Init, Linear, Module};
use crate::error::NablaError;
use crate::kernels::activation::Activation;
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
            other => other.name().to_string(),
        }
    }

    /// Trainable parameters the layer holds.
    pub fn parameters(&self) -> usize {
        match *self {
            LayerSpec::Linear { inputs, outputs } => inputs * outputs + outputs,
            LayerSpec::BatchNorm { features, .. } => 2 * features,
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
            LayerSpec::Linear { .. } | LayerSpec::Dropout { .. } | LayerSpec::BatchNorm { .. } => {
                None
            }
        }
    }

    /// Builds the layer this spec describes with `b` (a linear layer's weights drawn by `init`):
    /// the one place that maps a kind of layer in a model file to its [`Module`].
    pub fn build(&self, b: &mut Builder, init: Init) -> Box<dyn Module> {
        match *self {
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
            task: Task::Classification,
            classes: (0..outputs).map(|i| i.to_string()).collect(),
        }
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

    /// The activation that follows layer `i` before the next linear layer, if any (it picks a
    /// linear layer's initialisation).
    pub fn activation_after(&self, i: usize) -> Option<Activation> {
        self.layers
            .get(i + 1..)?
            .iter()
            .take_while(|l| !matches!(l, LayerSpec::Linear { .. }))
            .find_map(LayerSpec::activation)
    }

    /// The first activation used, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.layers.iter().find_map(LayerSpec::activation)
    }

    /// Checks that consecutive linear layers fit together and every size is positive.
    pub fn validate(&self) -> Result<(), NablaError> {
        if self.inputs == 0 {
            return Err(NablaError::Usage(
                "the model needs at least one input".into(),
            ));
        }
        let mut width = self.inputs;
        let mut any_linear = false;
        for (i, layer) in self.layers.iter().enumerate() {
            if let LayerSpec::Dropout { p } = *layer
                && !(0.0..1.0).contains(&p)
            {
                return Err(NablaError::Usage(format!(
                    "layer {i}: dropout probability must be in [0, 1), got {p}"
                )));
            }
            if let LayerSpec::BatchNorm { features, .. } = *layer
                && features != width
            {
                return Err(NablaError::Usage(format!(
                    "layer {i}: batch norm over {features} features follows a width of {width}"
                )));
            }
            if let LayerSpec::Linear { inputs, outputs } = *layer {
                if inputs != width {
                    return Err(NablaError::Usage(format!(
                        "layer {i}: a linear layer with {inputs} inputs follows a width of {width}"
                    )));
                }
                if outputs == 0 {
                    return Err(NablaError::Usage(format!(
                        "layer {i}: a linear layer needs at least one output"
                    )));
                }
                width = outputs;
                any_linear = true;
            }
        }
        if !any_linear {
            return Err(NablaError::Usage("the model has no linear layer".into()));
        }
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
