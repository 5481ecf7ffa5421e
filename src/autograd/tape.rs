//! The tape: nodes recorded in forward order, walked in reverse by [`Tape::backward`].
//!
//! Each node remembers the op that made it and holds its value. `backward(loss)` seeds
//! `∂L/∂L = 1`, then visits nodes from last to first; each op turns its upstream gradient
//! `∂L/∂out` into downstream gradients `∂L/∂in` for its inputs (the chain rule). A value that
//! feeds several ops gets the sum of their contributions: the first contribution is stored,
//! later ones are added, so nothing is zero-filled first.
//!
//! Buffers live in a [`Workspace`] that outlives the tape: node `i` of the next step reuses the
//! buffers of node `i` of this step, so a training loop that records the same ops every step
//! allocates nothing in the steady state.

use super::custom::CustomNode;
use super::ops::{self, Op};
use super::params::{Grads, ParamId, Params};
use crate::error::NablaError;
use crate::tensor::{Dims, Tensor};

/// A handle to a value recorded on a tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Var(pub(crate) usize);

/// One recorded value and how it was made.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) op: Op,
    pub(crate) value: Tensor,
    /// Extra forward state an op's backward needs (softmax probabilities for cross-entropy).
    pub(crate) aux: Tensor,
    pub(crate) needs_grad: bool,
}

/// Buffers a tape records into; keep one per worker and hand it to [`Tape::new`] every step.
#[derive(Debug, Default)]
pub struct Workspace {
    pub(crate) nodes: Vec<Node>,
    pub(crate) grads: Vec<Tensor>,
    pub(crate) grad_written: Vec<bool>,
    pub(crate) labels: Vec<u32>,
    /// Scratch an op's backward may overwrite (a convolution's input-gradient patch matrix).
    pub(crate) scratch: Vec<f32>,
    /// The ops recorded through [`Tape::custom`], their inputs and saved state, by slot.
    pub(crate) customs: Vec<CustomNode>,
}

impl Workspace {
    /// An empty workspace; it grows to fit the first step and is reused after that.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Records operations on values and parameters, then differentiates them.
///
/// ```
/// use nabla::{Params, Grads, Tape, Tensor, Workspace};
/// let mut params = Params::new();
/// let w = params.add("w", Tensor::from_vec(1, 1, vec![3.0]).unwrap());
/// let mut grads = Grads::zeros_like(&params);
/// let mut ws = Workspace::new();
/// let mut tape = Tape::new(&params, &mut ws);
/// let x = tape.input(&Tensor::from_vec(1, 1, vec![2.0]).unwrap());
/// let w = tape.param(w);
/// let y = tape.mul(x, w).unwrap();      // y = x·w = 6
/// let loss = tape.mul(y, y).unwrap();   // L = y² = 36
/// tape.backward(loss, &mut grads).unwrap();
/// // ∂L/∂w = 2y · x = 2·6·2 = 24
/// assert_eq!(grads.tensors()[0].data(), &[24.0]);
/// ```
pub struct Tape<'a> {
    pub(crate) ws: &'a mut Workspace,
    pub(crate) params: &'a Params,
    pub(crate) len: usize,
    /// False for a forward-only recording (see [`Tape::without_grad`]).
    pub(crate) grad: bool,
    /// Custom-op slots used so far.
    pub(crate) customs: usize,
}

impl<'a> Tape<'a> {
    /// Starts an empty recording that reads parameter values from `params` and reuses the
    /// buffers of `ws`.
    pub fn new(params: &'a Params, ws: &'a mut Workspace) -> Self {
        ws.labels.clear();
        Self {
            ws,
            params,
            len: 0,
            grad: true,
            customs: 0,
        }
    }

    /// This tape as a forward-only recording (evaluation, prediction): no node needs a
    /// gradient, so ops skip the state only backward reads (max pooling's arg-max).
    /// Backward on it computes nothing.
    pub fn without_grad(mut self) -> Self {
        self.grad = false;
        self
    }

    /// The parameters this tape reads.
    pub fn params(&self) -> &'a Params {
        self.params
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values (`f32`) the recorded nodes hold: their outputs and the forward state their
    /// backward keeps (patch matrices, arg-maxes, ...). Sizes evaluation chunks.
    pub fn held_floats(&self) -> usize {
        self.ws.nodes[..self.len]
            .iter()
            .map(|n| n.value.len() + n.aux.len())
            .sum()
    }

    /// Appends a node with an output of `rows × cols`, reusing node `len`'s buffers.
    pub(crate) fn push(&mut self, op: Op, rows: usize, cols: usize, needs_grad: bool) -> Var {
        self.push_dims(op, Dims::matrix(rows, cols), needs_grad)
    }

    /// Appends a node with an output shaped like `a`'s value (an elementwise op).
    pub(crate) fn push_like(&mut self, op: Op, a: Var, needs_grad: bool) -> Var {
        let dims = self.value(a).dims_value();
        self.push_dims(op, dims, needs_grad)
    }

    /// Appends a node with an output of shape `dims`, reusing node `len`'s buffers.
    pub(crate) fn push_dims(&mut self, op: Op, dims: Dims, needs_grad: bool) -> Var {
        let i = self.len;
        if i == self.ws.nodes.len() {
            self.ws.nodes.push(Node::default());
        }
        let node = &mut self.ws.nodes[i];
        node.op = op;
        node.needs_grad = needs_grad && self.grad;
        if !matches!(op, Op::Param(_)) {
            node.value.reset_for_overwrite(dims);
        }
        self.len += 1;
        Var(i)
    }

    /// Records a constant input (no gradient), copying `value`.
    pub fn input(&mut self, value: &Tensor) -> Var {
        self.leaf(value, false)
    }

    /// Records an input of `rows × cols` written in place by `fill` (no gradient): the data
    /// loader gathers a mini-batch straight into the tape's buffer this way.
    pub fn input_with(&mut self, rows: usize, cols: usize, fill: impl FnOnce(&mut [f32])) -> Var {
        let v = self.push(Op::Input, rows, cols, false);
        fill(self.ws.nodes[v.0].value.data_mut());
        v
    }

    /// Records a leaf value, copying it; with `requires_grad` its gradient is kept and can be
    /// read with [`Tape::grad`] after backward (gradient checks use this).
    pub fn leaf(&mut self, value: &Tensor, requires_grad: bool) -> Var {
        let v = self.push(Op::Input, value.rows(), value.cols(), requires_grad);
        self.ws.nodes[v.0].value.copy_from(value);
        v
    }

    /// Records a reference to parameter `id`; its value is read from the tape's [`Params`]
    /// without copying, and its gradient goes to the [`Grads`] passed to backward.
    pub fn param(&mut self, id: ParamId) -> Var {
        self.push(Op::Param(id), 0, 0, true)
    }

    /// The value of `v`.
    pub fn value(&self, v: Var) -> &Tensor {
        value_of(&self.ws.nodes[..self.len], self.params, v)
    }

    /// `(rows, cols)` of `v`'s matrix view (every axis but the last flattened into rows).
    pub fn shape(&self, v: Var) -> (usize, usize) {
        self.value(v).shape()
    }

    /// The shape of `v`, outermost axis first.
    pub fn dims(&self, v: Var) -> &[usize] {
        self.value(v).dims()
    }

    /// An error unless `v` was recorded on this tape (and so may be read).
    pub(crate) fn check_var(&self, v: Var, op: &str) -> Result<(), NablaError> {
        if v.0 < self.len {
            Ok(())
        } else {
            Err(NablaError::Shape(format!(
                "{op}: variable #{} was not recorded on this tape (it has {} nodes)",
                v.0, self.len
            )))
        }
    }

    /// Whether a gradient flows back into `v`.
    pub(crate) fn needs_grad(&self, v: Var) -> bool {
        self.ws.nodes[v.0].needs_grad
    }

    /// The gradient `∂L/∂v` of a non-parameter node after [`Tape::backward`], if it was reached.
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        if v.0 < self.len && self.ws.grad_written.get(v.0).copied().unwrap_or(false) {
            Some(&self.ws.grads[v.0])
        } else {
            None
        }
    }

    /// Input value of `a` and the node `out`, mutable (for an op's forward).
    pub(crate) fn io1(&mut self, a: Var, out: Var) -> (&Tensor, &mut Node) {
        let (lo, hi) = self.ws.nodes.split_at_mut(out.0);
        (value_of(lo, self.params, a), &mut hi[0])
    }

    /// Input values of `a` and `b` and the node `out`, mutable (for an op's forward).
    pub(crate) fn io2(&mut self, a: Var, b: Var, out: Var) -> (&Tensor, &Tensor, &mut Node) {
        let (lo, hi) = self.ws.nodes.split_at_mut(out.0);
        (
            value_of(lo, self.params, a),
            value_of(lo, self.params, b),
            &mut hi[0],
        )
    }

    /// Input values of `a`, `b` and `c` and the node `out`, mutable (for an op's forward).
    pub(crate) fn io3(
        &mut self,
        a: Var,
        b: Var,
        c: Var,
        out: Var,
    ) -> (&Tensor, &Tensor, &Tensor, &mut Node) {
        let (lo, hi) = self.ws.nodes.split_at_mut(out.0);
        (
            value_of(lo, self.params, a),
            value_of(lo, self.params, b),
            value_of(lo, self.params, c),
            &mut hi[0],
        )
    }

    /// Backpropagation: computes `∂loss/∂θ` for every parameter into `grads` (parameters the
    /// loss does not depend on get zeros) and `∂loss/∂v` for leaves that require a gradient.
    ///
    /// `loss` must be a `1 × 1` value.
    pub fn backward(&mut self, loss: Var, grads: &mut Grads) -> Result<(), NablaError> {
        grads.begin();
        self.backward_add(loss, grads)
    }

    /// [`Tape::backward`] adding `∂loss/∂θ` to the gradients already in `grads` (those of an
    /// earlier backward pass over the same parameters) instead of overwriting them: gradient
    /// accumulation over several batches with no zero-fill and no second buffer, the weight
    /// gradients added by the GEMM's accumulate mode. Each element ends as `old + new`, the
    /// sum a separate buffer summed afterwards would give. `grads` must hold gradients: from
    /// [`Grads::zeros_like`] or from a backward pass.
    pub fn backward_add(&mut self, loss: Var, grads: &mut Grads) -> Result<(), NablaError> {
        self.backward_pass(loss, grads, None)
    }

    /// [`Tape::backward`] (with `add`, [`Tape::backward_add`]) that calls `ready(id)` as soon
    /// as parameter `id`'s gradient is final: right after the backward of the last op that
    /// reads it (ops run last-recorded first), so the gradients of a network's last layer are
    /// ready while the earlier layers' backward still runs. Every parameter is reported once,
    /// parameters the loss does not reach at the end. A data-parallel trainer starts summing a
    /// layer's gradients across processes there, as PyTorch DDP's gradient hooks do.
    pub fn backward_notify(
        &mut self,
        loss: Var,
        grads: &mut Grads,
        add: bool,
        ready: &mut dyn FnMut(ParamId),
    ) -> Result<(), NablaError> {
        if !add {
            grads.begin();
        }
        self.backward_pass(loss, grads, Some(ready))
    }

    fn backward_pass(
        &mut self,
        loss: Var,
        grads: &mut Grads,
        mut ready: Option<&mut dyn FnMut(ParamId)>,
    ) -> Result<(), NablaError> {
        self.check_var(loss, "backward")?;
        if self.value(loss).len() != 1 {
            return Err(NablaError::Shape(format!(
                "backward needs a loss of one element (1×1), got shape {:?}",
                self.dims(loss)
            )));
        }
        if grads.tensors().len() != self.params.len() {
            return Err(NablaError::Shape(format!(
                "backward got gradients for {} parameters, the tape's model has {}",
                grads.tensors().len(),
                self.params.len()
            )));
        }
        let len = self.len;
        let ws = &mut *self.ws;
        if ws.grads.len() < len {
            ws.grads.resize_with(len, Tensor::default);
            ws.grad_written.resize(len, false);
        }
        ws.grad_written[..len].fill(false);

        let seed = &mut ws.grads[loss.0];
        seed.reset_for_overwrite(ws.nodes[loss.0].value.dims_value());
        seed.fill(1.0);
        ws.grad_written[loss.0] = true;

        let nodes = &ws.nodes[..len];
        for i in (0..=loss.0).rev() {
            if let (Some(ready), Op::Param(id)) = (ready.as_mut(), nodes[i].op) {
                // The earliest reference to the parameter: every op reading it has run.
                if !nodes[..i]
                    .iter()
                    .any(|n| matches!(n.op, Op::Param(p) if p == id))
                {
                    ready(id);
                }
            }
            if !ws.grad_written[i] || !nodes[i].needs_grad {
                continue;
            }
            let node = &nodes[i];
            let (lower, upper) = ws.grads.split_at_mut(i);
            let upstream = &upper[0];
            let ctx = Ctx {
                nodes,
                params: self.params,
                labels: &ws.labels,
                customs: &ws.customs,
            };
            let mut sink = Sink {
                grads: lower,
                written: &mut ws.grad_written[..i],
                param_grads: grads,
                scratch: &mut ws.scratch,
            };
            ops::backward(node, upstream, &ctx, &mut sink)?;
        }
        grads.finish();
        if let Some(ready) = ready {
            // Parameters recorded after the loss, or never: their gradients are zeros now.
            for id in (0..self.params.len()).map(ParamId) {
                if !nodes[..=loss.0]
                    .iter()
                    .any(|n| matches!(n.op, Op::Param(p) if p == id))
                {
                    ready(id);
                }
            }
        }
        Ok(())
    }
}

/// The value of `v` among `nodes` (parameters are read from `params`).
pub(crate) fn value_of<'t>(nodes: &'t [Node], params: &'t Params, v: Var) -> &'t Tensor {
    match nodes[v.0].op {
        Op::Param(id) => params.get(id),
        _ => &nodes[v.0].value,
    }
}

/// What an op's backward may read: every node's value and the parameters.
pub(crate) struct Ctx<'t> {
    pub(crate) nodes: &'t [Node],
    pub(crate) params: &'t Params,
    pub(crate) labels: &'t [u32],
    pub(crate) customs: &'t [CustomNode],
}

impl Ctx<'_> {
    /// The value of `v`.
    pub(crate) fn value(&self, v: Var) -> &Tensor {
        value_of(self.nodes, self.params, v)
    }
}

/// Where an op's backward writes its downstream gradients.
pub(crate) struct Sink<'t> {
    grads: &'t mut [Tensor],
    written: &'t mut [bool],
    param_grads: &'t mut Grads,
    /// Scratch for a backward rule, reused between steps (grown, never shrunk).
    pub(crate) scratch: &'t mut Vec<f32>,
}

impl Sink<'_> {
    /// The gradient buffer of `v` (shaped like `v`) and whether to add to it (`true`) or
    /// overwrite it (`false`); `None` when no gradient flows into `v`.
    pub(crate) fn slot(&mut self, ctx: &Ctx, v: Var) -> Option<(&mut Tensor, bool)> {
        let node = &ctx.nodes[v.0];
        if !node.needs_grad {
            return None;
        }
        if let Op::Param(id) = node.op {
            return Some(self.param_grads.slot(id));
        }
        let accumulate = self.written[v.0];
        self.written[v.0] = true;
        let g = &mut self.grads[v.0];
        if !accumulate {
            g.reset_for_overwrite(node.value.dims_value());
        }
        Some((g, accumulate))
    }
}
