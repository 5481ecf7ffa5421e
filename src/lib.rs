//! # nabla
//!
//! A deep-learning system for the CPU: tensors, reverse-mode autodiff, feed-forward networks,
//! optimizers and a training loop, with data loading for CSV and IDX files.
//!
//! The path of data: a [`data::Dataset`] is split into training and test sets, shuffled into
//! mini-batches each epoch; a [`nn::Sequential`] network records its forward pass on a
//! [`Tape`]; the loss's [`Tape::backward`] fills [`Grads`]; an [`optim::Optimizer`] updates the
//! [`Params`] (`W ← W − lr·∂L/∂W`).
//!
//! ```
//! use nabla::nn::{ModelSpec, Sequential};
//! use nabla::kernels::activation::Activation;
//! // 4 inputs, two hidden layers of 8 ReLU units, 3 classes.
//! let spec = ModelSpec::mlp(4, &[8, 8], Activation::Relu, 3);
//! let model = Sequential::new(&spec, 42).unwrap();
//! let probs = model.predict_proba(&[0.1, 0.2, 0.3, 0.4]).unwrap();
//! assert_eq!(probs.len(), 3);
//! assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//! ```

pub mod autograd;
pub mod data;
pub mod error;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod optim;
pub mod rng;
pub mod tensor;
pub mod train;

pub use autograd::{Grads, ParamId, Params, Tape, Var, Workspace};
pub use error::NablaError;
pub use tensor::Tensor;
