//! Parameters and their gradients, kept outside the tape so a model owns its weights, a tape
//! only borrows them while it records, and an optimizer updates them in place afterwards.

use crate::tensor::Tensor;

/// Names one parameter tensor inside a [`Params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// The parameter's position in its [`Params`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// The trainable tensors of a model, each with a name (`layers.0.weight`, ...) and the shape it
/// has in PyTorch and in model files (`[out, in]` for a linear weight, `[out]` for its bias; the
/// storage is always a 2-D [`Tensor`] of the same elements).
#[derive(Clone, Debug, Default)]
pub struct Params {
    tensors: Vec<Tensor>,
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
}

impl Params {
    /// An empty set of parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter and returns its id; its shape is the tensor's `[rows, cols]`.
    pub fn add(&mut self, name: impl Into<String>, value: Tensor) -> ParamId {
        let shape = vec![value.rows(), value.cols()];
        self.add_shaped(name, shape, value)
    }

    /// Adds a parameter whose shape (as PyTorch and model files see it) is `shape`; `value`
    /// holds its elements in row-major order.
    pub fn add_shaped(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        value: Tensor,
    ) -> ParamId {
        self.tensors.push(value);
        self.names.push(name.into());
        self.shapes.push(shape);
        ParamId(self.tensors.len() - 1)
    }

    /// The shape of parameter `id` as PyTorch and model files see it.
    pub fn shape(&self, id: ParamId) -> &[usize] {
        &self.shapes[id.0]
    }

    /// The parameter `id`.
    pub fn get(&self, id: ParamId) -> &Tensor {
        &self.tensors[id.0]
    }

    /// The parameter `id`, mutable.
    pub fn get_mut(&mut self, id: ParamId) -> &mut Tensor {
        &mut self.tensors[id.0]
    }

    /// The name of parameter `id`.
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.0]
    }

    /// The parameter called `name` (`layers.0.weight`), if there is one.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// How many parameter tensors there are.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.tensors.iter().map(Tensor::len).sum()
    }

    /// Every parameter id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<> {
        (0..self.tensors.len()).map(ParamId)
    }

    /// `(name, tensor)` pairs in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.names.iter().map(String::as_str).zip(&self.tensors)
    }

    /// Every tensor, mutable, in creation order (for optimizers).
    pub fn tensors_mut(&mut self) -> &mut [Tensor] {
        &mut self.tensors
    }

    /// Every tensor in creation order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }
}

/// One gradient tensor per parameter, shaped like it: `∂L/∂θ` after [`crate::Tape::backward`].
#[derive(Clone, Debug, Default)]
pub struct Grads {
    tensors: Vec<Tensor>,
    written: Vec<bool>,
}

impl Grads {
    /// Zero gradients shaped like `params`.
    pub fn zeros_like(params: &Params) -> Self {
        Self {
            tensors: params
                .tensors
                .iter()
                .map(|t| Tensor::zeros_dims(t.dims_value()))
                .collect(),
            written: vec![false; params.len()],
        }
    }

    /// The gradient of parameter `id`.
    pub fn get(&self, id: ParamId) -> &Tensor {
        &self.tensors[id.0]
    }

    /// Every gradient tensor, in parameter order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Every gradient tensor, mutable, in parameter order.
    pub fn tensors_mut(&mut self) -> &mut [Tensor] {
        &mut self.tensors
    }

    /// Marks every gradient as not yet written: the next write stores instead of adding, so no
    /// zero-fill is needed between steps.
    pub(crate) fn begin(&mut self) {
        self.written.fill(false);
    }

    /// Zero-fills the gradients of parameters no backward pass since [`Grads::begin`] reached;
    /// every gradient then holds a value a later pass adds to.
    pub(crate) fn finish(&mut self) {
        for (t, w) in self.tensors.iter_mut().zip(&mut self.written) {
            if !*w {
                t.fill(0.0);
                *w = true;
            }
        }
    }

    /// Slot for parameter `id`: the buffer and whether it already holds a gradient to add to.
    pub(crate) fn slot(&mut self, id: ParamId) -> (&mut Tensor, bool) {
        let accumulate = self.written[id.0];
        self.written[id.0] = true;
        (&mut self.tensors[id.0], accumulate)
    }

    /// `self += other`, element by element, in parameter order (a fixed reduction order).
    pub fn add_assign(&mut self, other: &Grads) {
        for (a, b) in self.tensors.iter_mut().zip(&other.tensors) {
            for (x, y) in a.data_mut().iter_mut().zip(b.data()) {
                *x += *y;
            }
        }
    }

    /// The global L2 norm `sqrt(Σ g²)` over every gradient, accumulated in f64.
    pub fn global_norm(&self) -> f64 {
        self.tensors
            .iter()
            .flat_map(|t| t.data())
            .map(|&g| g as f64 * g as f64)
            .sum::<f64>()
            .sqrt()
    }
}
