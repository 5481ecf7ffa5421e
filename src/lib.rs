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
//! ## Train a model
//!
//! Data in, a network, a trainer with named settings, a report per epoch:
//!
//! ```
//! use nabla::prelude::*;
//! // The built-in digits (1,797 images of 8×8 pixels, 10 classes), split 80/20 with a seed.
//! let digits = builtin::digits()?;
//! let order: Vec<usize> = (0..digits.len()).map(|i| i * 7 % digits.len()).collect();
//! let cut = digits.len() * 4 / 5;
//! let train = digits.subset(&order[..cut], "train");
//! let test = digits.subset(&order[cut..], "test");
//! // 64 pixels → 32 ReLU units → 10 classes.
//! let spec = ModelSpec::mlp(64, &[32], Activation::Relu, 10);
//! let mut network = Network::from_spec(&spec, 1)?;
//! let mut optimizer = Optimizer::Adam(Adam::new(0.003));
//! let config = TrainConfig::default().epochs(5).batch_size(32).seed(1).threads(1);
//! let report = Trainer::new(config)?.fit(
//!     &mut network,
//!     &mut optimizer,
//!     Splits::new(&train, &test),
//!     Hooks::new().on_epoch(|m| println!("epoch {}: test accuracy {:?}", m.epoch, m.test_accuracy)),
//! )?;
//! let last = report.history.last().expect("5 epochs ran");
//! assert!(last.test_accuracy.unwrap_or(0.0) > 0.8);
//! # Ok::<(), NablaError>(())
//! ```
//!
//! [`TrainConfig`](train::TrainConfig) also takes a schedule, warm-up, early stopping (with a
//! validation set: [`Splits`](train::Splits)), gradient clipping and augmentation, each by name.
//!
//! ## Your own module
//!
//! A layer or a whole model is any struct that implements [`nn::Module`]: its `forward` records
//! the computation on the [`Tape`], and its parameters are made (and named, as PyTorch would)
//! through the [`nn::Builder`] that [`nn::Network::build`] hands it. Here a residual block
//! `y = x + relu(W·x + b)` between two linear layers, trained, saved by name and loaded back:
//!
//! ```
//! use nabla::prelude::*;
//!
//! /// `y = x + relu(W·x + b)`.
//! struct Residual {
//!     inner: Linear,
//! }
//!
//! impl Module for Residual {
//!     fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
//!         let z = self.inner.forward(tape, x, ctx)?;
//!         let a = tape.relu(z);
//!         tape.add(x, a)
//!     }
//! }
//!
//! /// 64 pixels → 32 (ReLU) → residual block → 10 classes.
//! struct Net {
//!     input: Linear,
//!     block: Residual,
//!     output: Linear,
//! }
//!
//! impl Module for Net {
//!     fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
//!         let h = self.input.forward(tape, x, ctx)?;
//!         let h = tape.relu(h);
//!         let h = self.block.forward(tape, h, ctx)?;
//!         self.output.forward(tape, h, ctx)
//!     }
//! }
//!
//! fn build(seed: u64) -> Result<Network<Net>, NablaError> {
//!     Network::build(64, 10, seed, |b| {
//!         Ok(Net {
//!             input: Linear::new(&mut b.pp("input"), 64, 32, Init::HeNormal),
//!             block: Residual {
//!                 inner: Linear::new(&mut b.pp("block.inner"), 32, 32, Init::HeNormal),
//!             },
//!             output: Linear::new(&mut b.pp("output"), 32, 10, Init::GlorotUniform),
//!         })
//!     })
//! }
//!
//! let digits = builtin::digits()?;
//! let order: Vec<usize> = (0..digits.len()).map(|i| i * 7 % digits.len()).collect();
//! let (train, test) = (digits.subset(&order[..1500], "train"), digits.subset(&order[1500..], "test"));
//! let mut net = build(1)?;
//! let mut optimizer = Optimizer::Adam(Adam::new(0.003));
//! let mut trainer = Trainer::new(TrainConfig::default().epochs(3).seed(1))?;
//! trainer.fit(&mut net, &mut optimizer, Splits::new(&train, &test), Hooks::new())?;
//!
//! // A user's modules are saved as a state file (tensors by their names) and loaded into the
//! // same struct; `nabla predict` and friends read only built-in layers (`ModelSpec`).
//! let path = std::env::temp_dir().join(format!("nabla-residual-doc-{}.safetensors", std::process::id()));
//! nabla::io::save_state(&path, &net)?;
//! let mut again = build(2)?;
//! nabla::io::load_state(&path, &mut again)?;
//! let before = nabla::train::evaluate(&net, &test)?;
//! let after = nabla::train::evaluate(&again, &test)?;
//! assert_eq!(before.accuracy, after.accuracy);
//! assert!(again.tensors().iter().any(|t| t.name == "block.inner.weight"));
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), NablaError>(())
//! ```
//!
//! ## Saved models
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
