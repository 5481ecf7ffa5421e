//! # nabla
//!
//! A deep-learning system for the CPU: tensors, reverse-mode autodiff, layers as modules,
//! optimizers and a training loop, with data loading for CSV and IDX files and one-file models
//! that PyTorch can read.
//!
//! The path of data: a [`data::Dataset`] is split into training and test sets, shuffled into
//! mini-batches each epoch; a [`nn::Network`] (a [`nn::Module`] with its parameters and
//! buffers) records its forward pass on a [`Tape`]; the [`loss::Loss`]'s [`Tape::backward`] fills
//! [`Grads`]; an [`optim::Optimizer`] updates the [`Params`] (`W ← W − lr·∂L/∂W`).
//!
//! ```
//! use nabla::prelude::*;
//! // 4 inputs, two hidden layers of 8 ReLU units, 3 classes.
//! let spec = ModelSpec::mlp(4, &[8, 8], Activation::Relu, 3);
//! let model = Network::from_spec(&spec, 42)?;
//! let probs = model.predict_proba(&[0.1, 0.2, 0.3, 0.4])?;
//! assert_eq!(probs.len(), 3);
//! assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//! # Ok::<(), NablaError>(())
//! ```
//!
//! A trained model is one file ([`io::model_file`]: safetensors that PyTorch can load), read back
//! with [`io::Model`], which applies the saved preprocessing and predicts; `examples/` has the
//! whole path from arrays in memory to predictions, and a user-defined module.
//!
//! ```
//! use nabla::prelude::*;
//! let network = Network::from_spec(&ModelSpec::mlp(2, &[4], Activation::Relu, 2), 7)?;
//! let path = std::env::temp_dir().join(format!("nabla-crate-doc-{}.safetensors", std::process::id()));
//! nabla::io::save_network(&path, &network)?;
//! let model = Model::load(&path)?;
//! let probabilities = model.predict(&[0.3, -0.7])?;
//! assert_eq!(probabilities.len(), 2);
//! assert_eq!(model.classes().len(), 2);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), NablaError>(())
//! ```

pub mod autograd;
pub mod config;
pub mod data;
pub mod dist;
pub mod error;
pub mod explain;
pub mod io;
pub mod kernels;
pub mod loss;
pub mod nn;
pub mod optim;
pub mod rng;
pub mod simd;
pub mod task;
pub mod tensor;
pub mod train;

pub use autograd::{CustomOp, Grads, ParamId, Params, Tape, Var, Workspace, gradcheck};

/// What most programs need, in one `use nabla::prelude::*;`.
pub mod prelude {
    pub use crate::data::{Dataset, Features, Preprocess, builtin};
    pub use crate::error::NablaError;
    pub use crate::io::{Model, Scratch};
    pub use crate::kernels::activation::Activation;
    pub use crate::loss::Loss;
    pub use crate::nn::{
        BatchNorm1d, Builder, Ctx, Dropout, Init, Linear, ModelSpec, Module, Network, Sequential,
    };
    pub use crate::optim::{Adam, Optimizer, Sgd};
    pub use crate::task::Task;
    pub use crate::tensor::Tensor;
    pub use crate::train::{Hooks, Splits, TrainConfig, Trainer};
    pub use crate::{Tape, Var};
}
pub use error::NablaError;
pub use tensor::Tensor;
