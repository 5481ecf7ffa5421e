//! Networks as modules. A [`Module`] records its forward pass on a tape and holds the ids of the
//! parameters and buffers it made with a [`Builder`]; a [`Network`] owns those tensors beside the
//! module, so a tape can borrow every parameter at once and an optimizer update them as one list.
//! Layers: [`Linear`], activations ([`crate::kernels::activation::Activation`]), [`Dropout`],
//! [`BatchNorm1d`]; for images ([`Shape`]) [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`],
//! [`GlobalAvgPool`], [`BatchNorm2d`], [`Dropout2d`], [`Flatten`]; [`Sequential`] is a list of them built from a [`ModelSpec`] (the serde
//! description model files store).

pub mod activation;
pub mod avgpool;
pub mod batchnorm;
pub mod batchnorm2d;
pub mod buffers;
pub mod builder;
pub mod conv;
pub mod dropout;
pub mod dropout2d;
pub mod flatten;
pub mod global_pool;
pub mod init;
pub mod kind;
pub mod layers_text;
pub mod linear;
pub mod maxpool;
pub mod module;
pub mod network;
pub mod residual;
pub mod sequential;
pub mod shape;
pub mod spec;
pub mod summary;

pub use activation::LeakyReluSpec;
pub use avgpool::{AvgPool2d, AvgPool2dSpec};
pub use batchnorm::{BatchNorm1d, BatchNormSpec, BatchStats};
pub use batchnorm2d::{BatchNorm2d, BatchNorm2dSpec};
pub use buffers::{BufferId, Buffers, Dtype};
pub use builder::Builder;
pub use conv::{Conv2d, Conv2dSpec};
pub use dropout::{Dropout, DropoutSpec};
pub use dropout2d::{Dropout2d, Dropout2dSpec};
pub use flatten::{Flatten, FlattenSpec};
pub use global_pool::{GlobalAvgPool, GlobalAvgPoolSpec};
pub use init::Init;
pub use kind::{ExplainView, LayerBytes, LayerKind, TensorSpec};
pub use linear::{Linear, LinearSpec};
pub use maxpool::{MaxPool2d, MaxPool2dSpec};
pub use module::{Ctx, LayerInfo, Module, Traced};
pub use network::{Network, Snapshot, TensorRef};
pub use residual::{Residual, ResidualSpec};
pub use sequential::Sequential;
pub use shape::{ImageShape, Shape};
pub use spec::{LayerSpec, ModelSpec, Task};
