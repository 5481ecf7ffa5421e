//! Optimizers: given `∂L/∂θ` for every parameter, update `θ` in place. The set is closed, so
//! [`Optimizer`] is an enum over small per-algorithm structs, each with its formulas in its docs.
//!
//! Every update is elementwise, so it runs over fixed chunks of each parameter, in parallel on
//! the current rayon pool when asked: each element's arithmetic is the same whichever thread
//! does it, so results never depend on the thread count.

pub mod adagrad;
pub mod adam;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use rmsprop::RmsProp;
pub use schedule::{LrScheduler, Schedule};
pub use sgd::Sgd;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::autograd::{Grads, Params};
use crate::simd;
use crate::simd::elementwise::{add_assign, add_scaled, all_finite, scale_into};
use crate::tensor::Tensor;

/// An optimizer's internal state, for checkpoints: one buffer per parameter (empty before the
/// first step) and a counter (Adam's `t`; SGD: 1 once started).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Per-parameter state buffers, in parameter order.
    pub buffers: Vec<Vec<f32>>,
    /// The optimizer's step counter.
    pub counter: u64,
}

/// Elements per chunk of parallel elementwise work (big enough to amortise scheduling).
pub const CHUNK: usize = 16 * 1024;

/// Any of nabla's optimizers.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Stochastic gradient descent, with optional momentum.
    Sgd(Sgd),
    /// Adam / AdamW.
    Adam(Adam),
    /// RMSprop.
    RmsProp(RmsProp),
    /// Adagrad.
    Adagrad(Adagrad),
}

impl Optimizer {
    /// The internal state (moments, velocities, step counter) for a checkpoint.
    pub fn state(&self) -> OptimizerState {
        let (buffers, counter) = match self {
            Optimizer::Sgd(o) => o.state_parts(),
            Optimizer::Adam(o) => o.state_parts(),
            Optimizer::RmsProp(o) => o.state_parts(),
            Optimizer::Adagrad(o) => o.state_parts(),
        };
        OptimizerState { buffers, counter }
    }

    /// Restores a state from [`Optimizer::state`] (of the same optimizer over the same
    /// parameters; buffers of the wrong count are rebuilt as zeros at the next step).
    pub fn set_state(&mut self, state: OptimizerState) {
        let OptimizerState { buffers, counter } = state;
        match self {
            Optimizer::Sgd(o) => o.set_state_parts(buffers, counter),
            Optimizer::Adam(o) => o.set_state_parts(buffers, counter),
            Optimizer::RmsProp(o) => o.set_state_parts(buffers, counter),
            Optimizer::Adagrad(o) => o.set_state_parts(buffers, counter),
        }
    }

    /// Checks a saved state against the parameters it is to update: no buffers (no step taken
    /// yet), or one per parameter of exactly the size this optimizer keeps for it. A state of
    /// the wrong shape would otherwise be accepted and training would silently drift.
    pub fn check_state(&self, state: &OptimizerState, params: &[Tensor]) -> Result<(), String> {
        if state.buffers.is_empty() {
            return Ok(());
        }
        let width = self.state_width();
        if state.buffers.len() != params.len() {
            return Err(format!(
                "{} optimizer buffers for {} parameter tensors",
                state.buffers.len(),
                params.len()
            ));
        }
        for (k, (b, p)) in state.buffers.iter().zip(params).enumerate() {
            if b.len() != p.len() * width {
                return Err(format!(
                    "optimizer buffer {k} holds {} values; {} expects {} for its parameter",
                    b.len(),
                    self.name(),
                    p.len() * width
                ));
            }
        }
        Ok(())
    }

    /// State values kept per parameter element (0 for SGD without momentum).
    pub fn state_width(&self) -> usize {
        match self {
            Optimizer::Sgd(o) => usize::from(o.momentum != 0.0),
            Optimizer::Adam(_) | Optimizer::RmsProp(_) => 2,
            Optimizer::Adagrad(_) => 1,
        }
    }

    /// The per-parameter state buffers ([`Optimizer::state_width`] values per element, in
    /// chunks matching the parameter's; empty before the first step), for the ranks of a
    /// distributed run to share the chunks each updated.
    pub(crate) fn state_buffers_mut(&mut self) -> &mut Vec<Vec<f32>> {
        match self {
            Optimizer::Sgd(o) => o.buffers_mut(),
            Optimizer::Adam(o) => o.buffers_mut(),
            Optimizer::RmsProp(o) => o.buffers_mut(),
            Optimizer::Adagrad(o) => o.buffers_mut(),
        }
    }

    /// Applies one update to every parameter from its gradient, on the calling thread.
    /// Returns false (and leaves the affected chunks unchanged) if the gradient holds a NaN or
    /// an infinity.
    pub fn step(&mut self, params: &mut Params, grads: &Grads) -> bool {
        self.step_sum(params, std::slice::from_ref(grads), false, 1.0)
    }

    /// Applies one update from the gradient `Σ_k grads[k]` (micro-batch gradients, summed in
    /// order `((g0 + g1) + g2) + ...` chunk by chunk, never materialised in memory). With
    /// `parallel`, chunks run on the current rayon pool; the result is the same either way.
    /// The summed gradient is multiplied by `scale` first (gradient clipping). Returns false if
    /// any gradient chunk held a NaN or an infinity: those chunks are left unchanged, so no
    /// non-finite value is ever written into the parameters.
    pub fn step_sum(
        &mut self,
        params: &mut Params,
        grads: &[Grads],
        parallel: bool,
        scale: f32,
    ) -> bool {
        let finite = AtomicBool::new(true);
        let sources = GradSources {
            terms: Terms::Sets(grads),
            scale,
            finite: &finite,
            owned: None,
        };
        self.step_from(params.tensors_mut(), sources, parallel);
        finite.load(Ordering::Relaxed)
    }

    /// Applies one update to the chunks `owned[p]` ([`CHUNK`] elements each) of every
    /// parameter `p`, from the gradient `Σ_k terms[k]` summed in order as
    /// [`Optimizer::step_sum`] sums (with scale 1): each term is a gradient set or a flat
    /// vector of every parameter's values, parameter `p` from `offsets[p]`. The other chunks of the parameters
    /// and of the optimizer's state are left as they are: this is one rank's share of a step
    /// whose ranks update disjoint chunks (see [`crate::dist`]). Returns false if a chunk it
    /// updates held a NaN or an infinity (that chunk is left unchanged).
    pub(crate) fn step_chunks(
        &mut self,
        params: &mut [Tensor],
        (terms, offsets): (&[Term], &[usize]),
        owned: &[Range<usize>],
        parallel: bool,
    ) -> bool {
        let finite = AtomicBool::new(true);
        let sources = GradSources {
            terms: Terms::Mixed { terms, offsets },
            scale: 1.0,
            finite: &finite,
            owned: Some(owned),
        };
        self.step_from(params, sources, parallel);
        finite.load(Ordering::Relaxed)
    }

    fn step_from(&mut self, p: &mut [Tensor], sources: GradSources, parallel: bool) {
        match self {
            Optimizer::Sgd(o) => o.step(p, sources, parallel),
            Optimizer::Adam(o) => o.step(p, sources, parallel),
            Optimizer::RmsProp(o) => o.step(p, sources, parallel),
            Optimizer::Adagrad(o) => o.step(p, sources, parallel),
        }
    }

    /// The learning rate in force.
    pub fn learning_rate(&self) -> f64 {
        match self {
            Optimizer::Sgd(o) => o.lr,
            Optimizer::Adam(o) => o.lr,
            Optimizer::RmsProp(o) => o.lr,
            Optimizer::Adagrad(o) => o.lr,
        }
    }

    /// Sets the learning rate (schedules call this between steps).
    pub fn set_learning_rate(&mut self, lr: f64) {
        match self {
            Optimizer::Sgd(o) => o.lr = lr,
            Optimizer::Adam(o) => o.lr = lr,
            Optimizer::RmsProp(o) => o.lr = lr,
            Optimizer::Adagrad(o) => o.lr = lr,
        }
    }

    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(o) if o.decoupled => "adamw",
            Optimizer::Adam(_) => "adam",
            Optimizer::RmsProp(_) => "rmsprop",
            Optimizer::Adagrad(_) => "adagrad",
        }
    }
}

/// Makes a state buffer of `width` values per parameter element on first use (zeros).
pub(crate) fn ensure_state(state: &mut Vec<Vec<f32>>, params: &[Tensor], width: usize) {
    if state.len() != params.len() {
        *state = params.iter().map(|p| vec![0.0; p.len() * width]).collect();
    }
}

/// One term of a summed gradient handed to [`Optimizer::step_chunks`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Term<'a> {
    /// A flat vector holding every parameter's values (parameter `p` from `offsets[p]`).
    Flat(&'a [f32]),
    /// A gradient set, one tensor per parameter.
    Set(&'a Grads),
}

/// Where the terms of a summed gradient live.
#[derive(Clone, Copy)]
enum Terms<'a> {
    /// Gradient sets, one tensor per parameter each.
    Sets(&'a [Grads]),
    /// Flat vectors (parameter `p` at `offsets[p]`) or gradient sets.
    Mixed {
        terms: &'a [Term<'a>],
        offsets: &'a [usize],
    },
}

impl<'a> Terms<'a> {
    fn len(&self) -> usize {
        match self {
            Terms::Sets(g) => g.len(),
            Terms::Mixed { terms, .. } => terms.len(),
        }
    }

    /// Term `k`'s values `start..end` of parameter `param`.
    fn get(&self, k: usize, param: usize, start: usize, end: usize) -> &'a [f32] {
        let set = |g: &'a Grads| &g.tensors()[param].data()[start..end];
        match *self {
            Terms::Sets(g) => set(&g[k]),
            Terms::Mixed { terms, offsets } => match terms[k] {
                Term::Flat(v) => &v[offsets[param] + start..offsets[param] + end],
                Term::Set(g) => set(g),
            },
        }
    }
}

/// One or more gradient terms whose (scaled) sum is the gradient an optimizer applies, and
/// optionally the chunks of each parameter to update (the others are left as they are).
#[derive(Clone, Copy)]
pub(crate) struct GradSources<'a> {
    terms: Terms<'a>,
    scale: f32,
    /// Cleared when a chunk holds a non-finite value.
    finite: &'a AtomicBool,
    /// Per parameter, the range of [`CHUNK`]-element chunks to update (all when `None`).
    owned: Option<&'a [Range<usize>]>,
}

/// The global L2 norm of the summed gradients `√(Σ_i (Σ_k g_k,i)²)`, accumulated in
/// f64 on the calling thread in a fixed order.
pub fn global_norm(grads: &[Grads]) -> f64 {
    let Some(first) = grads.first() else {
        return 0.0;
    };
    let mut total = 0.0f64;
    for (param, t) in first.tensors().iter().enumerate() {
        for i in 0..t.len() {
            let g: f32 = grads.iter().map(|g| g.tensors()[param].data()[i]).sum();
            total += g as f64 * g as f64;
        }
    }
    total.sqrt()
}

impl GradSources<'_> {
    /// Writes `scale · Σ_k g_k[param][start..start + out.len()]` into `out`, in order of `k`
    /// (`(g0 + g1) · scale` for two terms; `((g0 + g1) + g2 + …) · scale` for more); returns
    /// the slice to use (the single term itself when there is only one and the scale is 1).
    fn chunk<'s>(&'s self, param: usize, start: usize, out: &'s mut [f32]) -> &'s [f32] {
        let end = start + out.len();
        let level = simd::level();
        let get = |k: usize| self.terms.get(k, param, start, end);
        match self.terms.len() {
            0 => out.fill(0.0),
            1 if self.scale == 1.0 => return get(0),
            1 => scale_into(level, get(0), self.scale, out),
            n => add_terms(level, [get(0), get(1)], (2..n).map(get), self.scale, out),
        }
        out
    }

    /// The chunks of parameter `param` (of `chunks`) to update.
    fn chunks_of(&self, param: usize, chunks: usize) -> Range<usize> {
        self.owned.map_or(0..chunks, |o| {
            o[param].start.min(chunks)..o[param].end.min(chunks)
        })
    }
}

/// `out = (t0 + t1) · scale` for two terms, `((t0 + t1) + t2 + …) · scale` for more: the order
/// in which one process adds a step's gradient terms, which every distributed scheme
/// reproduces bit for bit (the first two in one pass, the common case, then any others).
pub(crate) fn add_terms<'t>(
    level: simd::Level,
    [first, second]: [&[f32]; 2],
    rest: impl ExactSizeIterator<Item = &'t [f32]>,
    scale: f32,
    out: &mut [f32],
) {
    if rest.len() == 0 {
        add_scaled(level, first, second, scale, out);
        return;
    }
    add_scaled(level, first, second, 1.0, out);
    for t in rest {
        add_assign(level, out, t);
    }
    if scale != 1.0 {
        out.iter_mut().for_each(|o| *o *= scale);
    }
}

std::thread_local! {
    /// Each thread's buffer for one chunk of a summed gradient: made once per thread (see
    /// [`warm_up_thread`]) and overwritten by every chunk, so a step neither allocates nor
    /// zero-fills 64 KiB per chunk.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `f` with this thread's [`CHUNK`]-element scratch buffer (made on first use).
fn with_scratch<R>(f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|s| {
        if s.len() < CHUNK {
            s.resize(CHUNK, 0.0);
        }
        f(s)
    })
}

/// Makes the calling thread's scratch buffer for summed gradient chunks now, so no optimizer
/// step pays for it or allocates (trainers call this on their threads when they start).
pub fn warm_up_thread() {
    with_scratch(|_| ());
}

/// Calls `update(p, g, s)` on matching chunks of every parameter, its summed gradient and its
/// state (`width` state values per element), in parallel on the current rayon pool if
/// `parallel`. Chunks are fixed ([`CHUNK`] elements), so the arithmetic of every element is
/// the same whichever thread runs it.
pub(crate) fn for_each_chunk<F>(
    params: &mut [Tensor],
    grads: GradSources,
    state: &mut [Vec<f32>],
    width: usize,
    parallel: bool,
    update: F,
) where
    F: Fn(&mut [f32], &[f32], &mut [f32]) + Sync + Send,
{
    let run = |param: usize, c: usize, p: &mut [f32], s: &mut [f32]| {
        with_scratch(|scratch| {
            let g = grads.chunk(param, c * CHUNK, &mut scratch[..p.len()]);
            if !all_finite(simd::level(), g) {
                grads.finite.store(false, Ordering::Relaxed);
                return;
            }
            update(p, g, s);
        })
    };
    for (param, (p, s)) in params.iter_mut().zip(state.iter_mut()).enumerate() {
        let p = p.data_mut();
        let chunks = grads.chunks_of(param, p.len().div_ceil(CHUNK));
        let (skip, take) = (chunks.start, chunks.len());
        let parallel = parallel && take > 1;
        if width == 0 {
            // No state (plain SGD): chunks of parameters only.
            let each = |(c, p): (usize, &mut [f32])| run(param, c, p, &mut []);
            if parallel {
                let chunks = p.par_chunks_mut(CHUNK).enumerate();
                chunks.skip(skip).take(take).for_each(each);
            } else {
                p.chunks_mut(CHUNK)
                    .enumerate()
                    .skip(skip)
                    .take(take)
                    .for_each(each);
            }
        } else {
            let each = |(c, (p, s)): (usize, (&mut [f32], &mut [f32]))| run(param, c, p, s);
            if parallel {
                let chunks = p.par_chunks_mut(CHUNK).zip(s.par_chunks_mut(CHUNK * width));
                chunks.enumerate().skip(skip).take(take).for_each(each);
            } else {
                let chunks = p.chunks_mut(CHUNK).zip(s.chunks_mut(CHUNK * width));
                chunks.enumerate().skip(skip).take(take).for_each(each);
            }
        }
    }
}
