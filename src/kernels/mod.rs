//! The hot loops and nothing else: matrix multiply over the GEMM crate, elementwise activation
//! functions and their derivatives, row-wise softmax, convolution's im2col/col2im and pooling
//! windows. Kernels work on slices; they know nothing of
//! tapes or gradients. Parallelism is decided above them (see [`crate::train`]): every kernel here
//! runs on the calling thread, so its result never depends on the thread count.

pub mod activation;
pub mod conv;
pub mod matmul;
pub mod softmax;

pub use matmul::{Transpose, matmul};
