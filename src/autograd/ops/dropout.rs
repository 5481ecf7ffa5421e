//! Inverted dropout: during training each element is kept with probability `1 − p` and scaled
//! by `1/(1 − p)`, so the expected activation is unchanged and evaluation needs no rescaling.
//! Backward: `∂L/∂x = G ⊙ mask` with the same scaled mask.

use super::{Op, write};
use crate::autograd::tape::{Ctx, Node, Sink, Tape, Var};
use crate::error::NablaError;
use crate::rng::{ChaCha8Rng, RngExt};
use crate::tensor::Tensor;

impl Tape<'_> {
    /// Zeroes each element (of a tensor of any rank) with probability `p` (drawn from `rng`) and scales the rest by
    /// `1/(1 − p)`. `p` must be in `[0, 1)`.
    pub fn dropout(&mut self, a: Var, p: f32, rng: &mut ChaCha8Rng) -> Result<Var, NablaError> {
        if !(0.0..1.0).contains(&p) {
            return Err(NablaError::Usage(format!(
                "dropout probability must be in [0, 1), got {p}"
            )));
        }
        let needs = self.needs_grad(a);
        let out = self.push_like(Op::Dropout { a }, a, needs);
        let (x, node) = self.io1(a, out);
        let keep = 1.0 / (1.0 - p);
        node.aux.reset_for_overwrite(x.dims_value());
        for ((m, y), &xv) in node
            .aux
            .data_mut()
            .iter_mut()
            .zip(node.value.data_mut())
            .zip(x.data())
        {
            *m = if rng.random::<f32>() < p { 0.0 } else { keep };
            *y = xv * *m;
        }
        Ok(out)
    }

    /// Dropout of whole feature maps (PyTorch's `Dropout2d`): each of the `channels` planes of
    /// every row of `a` is zeroed with probability `p` or scaled by `1/(1 − p)` as one. The
    /// backward rule is dropout's, with the mask spread over each plane.
    pub fn dropout_channels(
        &mut self,
        a: Var,
        p: f32,
        channels: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Var, NablaError> {
        let (r, c) = self.shape(a);
        if !(0.0..1.0).contains(&p) || channels == 0 || c % channels != 0 {
            return Err(NablaError::Usage(format!(
                "channel dropout: probability {p} must be in [0, 1) and {c} values per row must \
                 be {channels} channels"
            )));
        }
        let hw = c / channels;
        let needs = self.needs_grad(a);
        let out = self.push(Op::Dropout { a }, r, c, needs);
        let (x, node) = self.io1(a, out);
        let keep = 1.0 / (1.0 - p);
        node.aux.reshape_for_overwrite(r, c);
        let planes = node.aux.data_mut().chunks_exact_mut(hw.max(1));
        for ((m, y), xv) in planes
            .zip(node.value.data_mut().chunks_exact_mut(hw.max(1)))
            .zip(x.data().chunks_exact(hw.max(1)))
        {
            let k = if rng.random::<f32>() < p { 0.0 } else { keep };
            m.fill(k);
            for (y, &xv) in y.iter_mut().zip(xv) {
                *y = xv * k;
            }
        }
        Ok(out)
    }
}

pub(super) fn backward(a: Var, node: &Node, g: &Tensor, ctx: &Ctx, sink: &mut Sink) {
    let (mask, g) = (node.aux.data(), g.data());
    if let Some((d, acc)) = sink.slot(ctx, a) {
        write(d.data_mut(), acc, |i| g[i] * mask[i]);
    }
}
