//! Data in: the [`Dataset`] type, readers for each source (the built-in digits, IDX folders),
//! and seeded, stratified splits. Pixels stay `u8` in memory and become `f32` one mini-batch at a
//! time (see [`Dataset::gather`]).

pub mod builtin;
pub mod dataset;
pub mod idx;
pub mod split;

pub use dataset::{Dataset, Features};
