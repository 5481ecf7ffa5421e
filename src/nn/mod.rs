//! Networks as modules. A [`Module`] records its forward pass on a tape and holds the ids of the
//! parameters and buffers it made with a [`Builder`]; a [`Network`] owns those tensors beside the
//! module, so a tape can borrow every parameter at once and an optimizer update them as one list.
//! Layers: [`Linear`], activations ([`crate::kernels::activation::Activation`]), [`Dropout`],
//! [`BatchNorm1d`]; [`Sequential`] is a list of them built from a [`ModelSpec`] (the serde
//! description model files store).

pub mod activation;
pub mod batchnorm;
pub mod buffers;
pub mod builder;
pub mod dropout;
pub mod init;
pub mod linear;
pub mod module;
pub mod network;
pub mod sequential;
pub mod spec;

pub use batchnorm::{BatchNorm1d, BatchStats};
pub use buffers::{BufferId, Buffers, Dtype};
pub use builder::Builder;
pub use dropout::Dropout;
pub use init::Init;
pub use linear::Linear;
pub use module::{Ctx, LayerInfo, Module, Traced};
pub use network::{Network, Snapshot, TensorRef};
pub use sequential::Sequential;
pub use spec::{LayerSpec, ModelSpec, Task};
