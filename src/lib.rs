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
//!
//! A trained model is one file ([`io::model_file`]: safetensors that PyTorch can load), read back
//! with [`io::Model`], which applies the saved preprocessing and predicts without allocating:
//!
//! ```
//! # use nabla::data::preprocess::{ColumnEncoding, Preprocess, Scaling, TargetEncoding};
//! # use nabla::kernels::activation::Activation;
//! # use nabla::nn::{ModelSpec, Sequential, Task};
//! # let spec = ModelSpec::mlp(2, &[4], Activation::Relu, 2);
//! # let network = Sequential::new(&spec, 7)?;
//! # let preprocess = Preprocess {
//! #     features: vec!["a".into(), "b".into()], center: vec![0.0; 2], scale: vec![1.0; 2],
//! #     scaling: Scaling::None,
//! #     columns: ["a", "b"].map(|n| ColumnEncoding::Numeric { name: n.into(), impute: None }).to_vec(),
//! #     target: TargetEncoding { name: "y".into(), task: Task::Classification,
//! #         classes: spec.classes.clone(), center: 0.0, scale: 1.0 },
//! # };
//! let path = std::env::temp_dir().join(format!("nabla-crate-doc-{}.safetensors", std::process::id()));
//! // What `nabla train --save` does:
//! nabla::io::save(&path, &network, &preprocess, &serde_json::json!({"seed": 7}))?;
//! let mut model = nabla::io::Model::load(&path)?;
//! let probabilities = model.predict(&[0.3, -0.7])?;
//! assert_eq!(probabilities.len(), 2);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), nabla::NablaError>(())
//! ```

pub mod autograd;
pub mod data;
pub mod error;
pub mod explain;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod optim;
pub mod rng;
pub mod task;
pub mod tensor;
pub mod train;

pub use autograd::{Grads, ParamId, Params, Tape, Var, Workspace};
pub use error::NablaError;
pub use tensor::Tensor;
