//! Buffers: the named tensors of a model that are state but not trained (batch norm's running
//! mean and variance, its batch counter). Saved and loaded with the parameters, never touched
//! by an optimizer.

use crate::tensor::Tensor;

/// Names one buffer inside a [`Buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BufferId(pub(crate) usize);

/// How a buffer is stored in a model file. Values are always held as `f32` in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// A 64-bit integer counter (PyTorch's `num_batches_tracked`).
    I64,
}

/// The buffers of a model, each with a name, the shape PyTorch gives it and its file dtype.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buffers {
    tensors: Vec<Tensor>,
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    dtypes: Vec<Dtype>,
}

impl Buffers {
    /// No buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a buffer and returns its id.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        dtype: Dtype,
        value: Tensor,
    ) -> BufferId {
        self.tensors.push(value);
        self.names.push(name.into());
        self.shapes.push(shape);
        self.dtypes.push(dtype);
        BufferId(self.tensors.len() - 1)
    }

    /// The buffer `id`.
    pub fn get(&self, id: BufferId) -> &Tensor {
        &self.tensors[id.0]
    }

    /// The buffer `id`, mutable.
    pub fn get_mut(&mut self, id: BufferId) -> &mut Tensor {
        &mut self.tensors[id.0]
    }

    /// The name of buffer `id`.
    pub fn name(&self, id: BufferId) -> &str {
        &self.names[id.0]
    }

    /// The shape of buffer `id` as PyTorch and model files see it.
    pub fn shape(&self, id: BufferId) -> &[usize] {
        &self.shapes[id.0]
    }

    /// The file dtype of buffer `id`.
    pub fn dtype(&self, id: BufferId) -> Dtype {
        self.dtypes[id.0]
    }

    /// The buffer called `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<BufferId> {
        self.names.iter().position(|n| n == name).map(BufferId)
    }

    /// How many buffers there are.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there is no buffer.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Every buffer id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = BufferId> + use<> {
        (0..self.tensors.len()).map(BufferId)
    }
}
