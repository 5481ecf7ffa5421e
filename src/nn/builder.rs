//! [`Builder`]: where a model's parameters and buffers are created and named. A layer asks its
//! builder for a parameter by its own short name (`weight`); the builder prefixes the path it
//! was given (`layers.0`), so names are made in one place (candle's `VarBuilder::pp`).

use super::buffers::{BufferId, Buffers, Dtype};
use crate::autograd::{ParamId, Params};
use crate::rng::ChaCha8Rng;
use crate::tensor::Tensor;

/// Creates named parameters and buffers under a prefix, drawing initial values from one seeded
/// stream in creation order.
pub struct Builder<'b> {
    params: &'b mut Params,
    buffers: &'b mut Buffers,
    rng: &'b mut ChaCha8Rng,
    prefix: String,
}

impl<'b> Builder<'b> {
    /// A builder adding to `params` and `buffers`, with no prefix.
    pub fn new(params: &'b mut Params, buffers: &'b mut Buffers, rng: &'b mut ChaCha8Rng) -> Self {
        Self {
            params,
            buffers,
            rng,
            prefix: String::new(),
        }
    }

    /// A builder for a sub-module called `name`: its tensors are named `prefix.name.…`.
    pub fn pp(&mut self, name: impl std::fmt::Display) -> Builder<'_> {
        Builder {
            prefix: self.path(&name.to_string()),
            params: self.params,
            buffers: self.buffers,
            rng: self.rng,
        }
    }

    /// The full name of `name` under this builder's prefix (`path("")` is the prefix with its
    /// trailing dot).
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// A trainable parameter of `shape` (PyTorch's), its elements filled by `init` from the
    /// builder's random stream.
    pub fn param(
        &mut self,
        name: &str,
        shape: &[usize],
        init: impl FnOnce(&mut [f32], &mut ChaCha8Rng),
    ) -> ParamId {
        let mut t = storage(shape);
        init(t.data_mut(), self.rng);
        self.params.add_shaped(self.path(name), shape.to_vec(), t)
    }

    /// A buffer of `shape` holding `value` in every element.
    pub fn buffer(&mut self, name: &str, shape: &[usize], dtype: Dtype, value: f32) -> BufferId {
        let mut t = storage(shape);
        t.fill(value);
        self.buffers.add(self.path(name), shape.to_vec(), dtype, t)
    }
}

/// The 2-D storage of a tensor of `shape`: `[n]` and `[]` become one row, `[a, b, …]` becomes
/// `a` rows of `b·…` columns.
fn storage(shape: &[usize]) -> Tensor {
    match shape {
        [] => Tensor::zeros(1, 1),
        [n] => Tensor::zeros(1, *n),
        [rows, rest @ ..] => Tensor::zeros(*rows, rest.iter().product()),
    }
}
