//! How many rows one evaluation chunk holds: [`EVAL_CHUNK`], or fewer when one row's recorded
//! forward pass is wide (an image network records tens of thousands of values per image), so a
//! chunk's tape stays near [`EVAL_CHUNK_FLOATS`] values. The size depends on the model and the
//! data's width only, never on the thread count, so results stay the same for any `--threads`.

use super::EVAL_CHUNK;
use crate::autograd::{Tape, Workspace};
use crate::data::Dataset;
use crate::error::NablaError;
use crate::nn::{Module, Network};

/// Values (node outputs and their forward state) one evaluation chunk's tape may hold:
/// 2²³ `f32` = 32 MiB per evaluating thread.
pub const EVAL_CHUNK_FLOATS: usize = 1 << 23;

/// Rows per evaluation chunk of `model` on `data`: the values one row's forward pass records
/// (measured on the first sample) divided into [`EVAL_CHUNK_FLOATS`], at most [`EVAL_CHUNK`].
pub fn eval_chunk_rows<M: Module>(model: &Network<M>, data: &Dataset) -> Result<usize, NablaError> {
    if data.is_empty() {
        return Ok(EVAL_CHUNK);
    }
    let mut ws = Workspace::new();
    let mut tape = Tape::new(model.params(), &mut ws).without_grad();
    let x = tape.input_with(1, data.dim(), |buf| data.gather(&[0], buf));
    model.forward(&mut tape, x)?;
    let per_row = tape.held_floats().max(1);
    Ok((EVAL_CHUNK_FLOATS / per_row).clamp(1, EVAL_CHUNK))
}
