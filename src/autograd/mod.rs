//! Reverse-mode automatic differentiation: a [`Tape`] records ops in forward order and
//! [`Tape::backward`] applies the chain rule in reverse. Parameters live in [`Params`], their
//! gradients in [`Grads`]; the tape only borrows them.

pub mod custom;
pub mod gradcheck;
pub mod ops;
pub mod params;
pub mod tape;

pub use custom::{Backward, CustomOp};
pub use params::{Grads, ParamId, Params};
pub use tape::{Tape, Var, Workspace};
