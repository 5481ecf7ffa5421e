//! A training step allocates nothing in the steady state: counted with a global allocator that
//! tallies every allocation made while a step runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nabla::data::builtin;
use nabla::kernels::activation::Activation;
use nabla::nn::{ImageShape, ModelSpec, Network};
use nabla::optim::{Adam, Optimizer, Sgd};
use nabla::train::{TrainConfig, Trainer};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Returns the allocation count and the trainer: the caller keeps the trainer alive, because a
/// dropped rayon pool's threads exit (and free) in the background, during a later count.
fn allocations_in_steady_state(threads: usize, optimizer: Optimizer) -> (usize, Trainer) {
    allocations_for(
        &ModelSpec::mlp(64, &[128, 64], Activation::Relu, 10),
        threads,
        optimizer,
    )
}

/// A convolutional network on the digits as 1×8×8 images: every image layer kind.
fn cnn() -> ModelSpec {
    let text = "conv 4 3 pad 1, batchnorm, relu, maxpool 2, dropout2d 0.1, conv 6 3, relu, \
                avgpool 2 stride 1, gap, flatten, dense 16, relu, dense 10";
    ModelSpec::from_layers(text, 64, Some(ImageShape::new(1, 8, 8))).unwrap()
}

fn allocations_for(spec: &ModelSpec, threads: usize, optimizer: Optimizer) -> (usize, Trainer) {
    let data = builtin::digits().unwrap();
    let mut model = Network::from_spec(spec, 1).unwrap();
    let mut opt = optimizer;
    let mut trainer = Trainer::new(TrainConfig::new(1, 200, 1, threads)).unwrap();
    let batches: Vec<Vec<usize>> = (0..8).map(|b| (b * 200..(b + 1) * 200).collect()).collect();
    // Warm up: buffers grow to the batch's size, optimizer state appears.
    for batch in &batches[..3] {
        trainer.step(&mut model, &mut opt, &data, batch).unwrap();
    }
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for batch in &batches[3..] {
        trainer.step(&mut model, &mut opt, &data, batch).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCATIONS.load(Ordering::SeqCst), trainer)
}

#[test]
fn training_steps_allocate_nothing_once_warm() {
    // One test function: the counter is global, so cases must not run in parallel.
    let mut keep = Vec::new();
    for threads in [1, 2] {
        let (n, t) = allocations_in_steady_state(threads, Optimizer::Sgd(Sgd::new(0.05, 0.9)));
        keep.push(t);
        assert_eq!(n, 0, "{threads} thread(s), SGD: {n} allocations in 5 steps");
        let (n, t) = allocations_in_steady_state(threads, Optimizer::Adam(Adam::new(0.001)));
        keep.push(t);
        assert_eq!(
            n, 0,
            "{threads} thread(s), Adam: {n} allocations in 5 steps"
        );
        let (n, t) = allocations_for(&cnn(), threads, Optimizer::Adam(Adam::new(0.001)));
        keep.push(t);
        assert_eq!(n, 0, "{threads} thread(s), CNN: {n} allocations in 5 steps");
    }
}
