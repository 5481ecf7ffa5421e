//! Weight initialisers. He (Kaiming) keeps the variance of ReLU-family activations steady from
//! layer to layer (`std = sqrt(2 / fan_in)`); Glorot (Xavier) does the same for sigmoid/tanh
//! (`a = sqrt(6 / (fan_in + fan_out))` for the uniform form). Biases start at zero.

use crate::kernels::activation::Activation;
use crate::rng::{ChaCha8Rng, normal, uniform};

/// A weight initialisation scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Normal with `std = sqrt(2 / fan_in)`.
    HeNormal,
    /// Uniform in `±sqrt(6 / fan_in)`.
    HeUniform,
    /// Normal with `std = sqrt(2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
}

impl Init {
    /// The default for a linear layer followed by `activation` (`None`: the output layer).
    pub fn for_activation(activation: Option<Activation>) -> Self {
        match activation {
            Some(Activation::Relu | Activation::LeakyRelu { .. }) => Init::HeNormal,
            Some(Activation::Sigmoid | Activation::Tanh | Activation::Gelu) | None => {
                Init::GlorotUniform
            }
        }
    }

    /// Fills `w` (shape `[fan_out, fan_in]`) from `rng`.
    pub fn fill(self, w: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng) {
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            Init::HeNormal => {
                let std = (2.0 / fi).sqrt();
                w.iter_mut().for_each(|v| *v = std * normal(rng));
            }
            Init::HeUniform => {
                let a = (6.0 / fi).sqrt();
                w.iter_mut().for_each(|v| *v = uniform(rng, a));
            }
            Init::GlorotNormal => {
                let std = (2.0 / (fi + fo)).sqrt();
                w.iter_mut().for_each(|v| *v = std * normal(rng));
            }
            Init::GlorotUniform => {
                let a = (6.0 / (fi + fo)).sqrt();
                w.iter_mut().for_each(|v| *v = uniform(rng, a));
            }
        }
    }
}
