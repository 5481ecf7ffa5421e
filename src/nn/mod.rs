//! Networks as data: a [`ModelSpec`] says which layers there are; [`Sequential`] builds them,
//! owns their parameters and records its forward pass on a tape.

pub mod init;
pub mod sequential;
pub mod spec;

pub use init::Init;
pub use sequential::{BatchStats, RunningStats, Sequential};
pub use spec::{LayerSpec, ModelSpec, Task};
