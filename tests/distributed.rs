//! Data-parallel training is bit-identical to one process: ranks run as threads joined by
//! channels ([`LocalGroup`], the same `Collective` seam MPI uses), and every rank ends with the
//! weights, running statistics and per-epoch metrics of the one-process run with the same
//! seed, for 1–4 ranks and 1 or 2 threads per rank.

use std::time::Duration;

use nabla::dist::{Collective, LocalGroup};
use nabla::optim::OptimizerState;
use nabla::prelude::*;
use nabla::train::{FitReport, MICRO_BATCH};

/// 1,100 training rows in batches of 512: 8 micro-batches per full batch (at least 2 per rank
/// for 4 ranks) and a partial last batch of 76 rows (2 micro-batches of 38 rows), so
/// identity cannot hold by accident.
fn digits() -> (Dataset, Dataset) {
    let d = builtin::digits().unwrap();
    let train: Vec<usize> = (0..1100).collect();
    let test: Vec<usize> = (1100..d.len()).collect();
    (d.subset(&train, "train"), d.subset(&test, "test"))
}

/// Batch norm (running statistics folded across ranks) and dropout (masks per micro-batch).
fn network() -> Network {
    let spec = ModelSpec::mlp_with(64, &[48, 32], Activation::Relu, 10, true, 0.1);
    Network::from_spec(&spec, 7).unwrap()
}

fn config(threads: usize, clip: bool) -> TrainConfig {
    config_with(threads, clip, 512)
}

fn config_with(threads: usize, clip: bool, batch: usize) -> TrainConfig {
    let mut c = TrainConfig::new(3, batch, 11, threads);
    if clip {
        c.clip_grad_norm = Some(0.5);
    }
    c
}

/// Tensor names and raw bits.
type Bits = Vec<(String, Vec<u32>)>;

/// Every tensor (parameters and buffers) as raw bits, by name.
fn bits(model: &Network) -> Bits {
    model
        .tensors()
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.data.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

fn optimizer(adam: bool) -> Optimizer {
    if adam {
        Optimizer::Adam(Adam::new(0.01))
    } else {
        Optimizer::Sgd(Sgd::new(0.1, 0.9))
    }
}

fn train_one(
    threads: usize,
    adam: bool,
    clip: bool,
    group: Option<Box<dyn Collective>>,
) -> (Bits, FitReport) {
    train_batch(config(threads, clip), adam, group)
}

fn train_batch(
    config: TrainConfig,
    adam: bool,
    group: Option<Box<dyn Collective>>,
) -> (Bits, FitReport) {
    let (w, r, _) = train_full(config, adam, group);
    (w, r)
}

/// As [`train_batch`], with the optimizer's state at the end.
fn train_full(
    config: TrainConfig,
    adam: bool,
    group: Option<Box<dyn Collective>>,
) -> (Bits, FitReport, OptimizerState) {
    train_overlap(config, adam, group, true)
}

/// As [`train_full`], with the gradient sum overlapping backward (ranks combining by messages)
/// or not.
fn train_overlap(
    config: TrainConfig,
    adam: bool,
    group: Option<Box<dyn Collective>>,
    overlap: bool,
) -> (Bits, FitReport, OptimizerState) {
    let (train, test) = digits();
    let mut model = network();
    let mut opt = optimizer(adam);
    let mut trainer = Trainer::new(config).unwrap().overlap(overlap);
    if let Some(group) = group {
        trainer = trainer.distributed(group);
    }
    let report = trainer
        .fit(
            &mut model,
            &mut opt,
            Splits::new(&train, &test),
            Hooks::new(),
        )
        .unwrap();
    (bits(&model), report, opt.state())
}

fn train_group(size: usize, threads: usize, adam: bool, clip: bool) -> Vec<(Bits, FitReport)> {
    let members = LocalGroup::new(size, Duration::from_secs(60));
    let handles: Vec<_> = members
        .into_iter()
        .map(|m| std::thread::spawn(move || train_one(threads, adam, clip, Some(Box::new(m)))))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn same_history(a: &FitReport, b: &FitReport, what: &str) {
    assert_eq!(a.history.len(), b.history.len(), "{what}");
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.train_loss.to_bits(), y.train_loss.to_bits(), "{what}");
        assert_eq!(x.train_accuracy, y.train_accuracy, "{what}");
        assert_eq!(
            x.test_loss.map(f64::to_bits),
            y.test_loss.map(f64::to_bits),
            "{what}"
        );
        assert_eq!(x.test_accuracy, y.test_accuracy, "{what}");
    }
}

#[test]
fn the_batches_are_big_enough_to_split() {
    assert_eq!(MICRO_BATCH, 64);
    assert_eq!(512 / MICRO_BATCH, 8);
    assert_eq!(1100 % 512, 76);
}

#[test]
fn any_number_of_ranks_trains_the_one_process_weights() {
    for adam in [false, true] {
        let (single, report) = train_one(1, adam, false, None);
        for size in [1, 2, 3, 4] {
            for threads in [1, 2] {
                let what = format!("adam {adam}, {size} ranks × {threads} threads");
                for (rank, (w, r)) in train_group(size, threads, adam, false)
                    .into_iter()
                    .enumerate()
                {
                    assert!(w == single, "{what}: rank {rank}'s weights differ");
                    same_history(&r, &report, &what);
                }
            }
        }
    }
}

/// Batches of 128 rows are 2 micro-batches (the last, 76 rows, 2 of 38): one term per rank
/// for 2 ranks, none on ranks 2 and 3 of 3 or 4, so the gradient sum takes the direct
/// reduce-scatter + all-gather (see `nabla::dist::Reducer`), not the chain; overlapping the
/// backward pass (parameter by parameter, as each is final) or after it.
#[test]
fn the_direct_reduction_trains_the_one_process_weights() {
    assert!(nabla::dist::direct_pays(&[1, 1], 1 << 22));
    assert!(nabla::dist::direct_pays(&[1, 1, 0, 0], 1 << 22));
    assert_eq!(1100 % 128, 76);
    for adam in [false, true] {
        let (single, report) = train_batch(config_with(1, false, 128), adam, None);
        for (size, overlap) in [(2, true), (3, true), (4, true), (2, false), (4, false)] {
            for threads in [1, 2] {
                let what = format!(
                    "batch 128, adam {adam}, {size} ranks × {threads} threads, overlap {overlap}"
                );
                let members = LocalGroup::new(size, Duration::from_secs(60));
                let handles: Vec<_> = members
                    .into_iter()
                    .map(|m| {
                        let c = config_with(threads, false, 128);
                        std::thread::spawn(move || {
                            train_overlap(c, adam, Some(Box::new(m)), overlap)
                        })
                    })
                    .collect();
                for (rank, h) in handles.into_iter().enumerate() {
                    let (w, r, _) = h.join().unwrap();
                    assert!(w == single, "{what}: rank {rank}'s weights differ");
                    same_history(&r, &report, &what);
                }
            }
        }
    }
}

/// Ranks that share memory take the sharded step (each updates its own chunks from the
/// others' terms, read in place): the same weights, metrics and, after `fit`, optimizer state
/// as one process, with one term per rank (batch 128), several (512: 4 groups of 2 micro-batches),
/// uneven groups and ranks with none (300: 3 groups; 128 and the last batches over 3–4 ranks).
#[test]
fn ranks_sharing_memory_train_the_one_process_weights_and_state() {
    for adam in [false, true] {
        for batch in [128, 512, 300] {
            let (single, report, state) = train_full(config_with(1, false, batch), adam, None);
            for size in [2, 3, 4] {
                for threads in [1, 2] {
                    let what = format!("batch {batch}, adam {adam}, {size} ranks × {threads}");
                    let members = LocalGroup::with_shared_memory(size, Duration::from_secs(60));
                    let handles: Vec<_> = members
                        .into_iter()
                        .map(|m| {
                            let c = config_with(threads, false, batch);
                            std::thread::spawn(move || train_full(c, adam, Some(Box::new(m))))
                        })
                        .collect();
                    for (rank, h) in handles.into_iter().enumerate() {
                        let (w, r, s) = h.join().unwrap();
                        assert!(w == single, "{what}: rank {rank}'s weights differ");
                        same_history(&r, &report, &what);
                        assert!(s == state, "{what}: rank {rank}'s optimizer state differs");
                    }
                }
            }
        }
    }
}

#[test]
fn gradient_clipping_sees_the_whole_batch() {
    let (single, _) = train_one(2, false, true, None);
    for (rank, (w, _)) in train_group(3, 1, false, true).into_iter().enumerate() {
        assert!(w == single, "rank {rank}'s weights differ with clipping");
    }
    // Ranks sharing memory sum the whole gradient too when they clip.
    let members = LocalGroup::with_shared_memory(2, Duration::from_secs(60));
    let handles: Vec<_> = (members.into_iter())
        .map(|m| std::thread::spawn(move || train_one(1, false, true, Some(Box::new(m)))))
        .collect();
    for (rank, h) in handles.into_iter().enumerate() {
        assert!(
            h.join().unwrap().0 == single,
            "rank {rank} (shared) differs"
        );
    }
}

/// Batch 512 sums along the chain, batch 128 by the direct scheme: both notice.
#[test]
fn a_rank_that_stops_is_named_by_the_others() {
    for batch in [512, 128] {
        a_rank_stops(batch);
    }
}

fn a_rank_stops(batch: usize) {
    let mut members = LocalGroup::new(2, Duration::from_secs(5));
    let second = members.pop().unwrap();
    let first = members.pop().unwrap();
    drop(second);
    let (train, test) = digits();
    let mut model = network();
    let mut opt = optimizer(false);
    let err = Trainer::new(config_with(1, false, batch))
        .unwrap()
        .distributed(Box::new(first))
        .fit(
            &mut model,
            &mut opt,
            Splits::new(&train, &test),
            Hooks::new(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("rank 1"), "{err}");
}

#[test]
fn a_silent_rank_times_out() {
    for batch in [512, 128] {
        a_rank_is_silent(batch);
    }
}

fn a_rank_is_silent(batch: usize) {
    let mut members = LocalGroup::new(2, Duration::from_millis(300));
    let second = members.pop().unwrap();
    let first = members.pop().unwrap();
    let (train, test) = digits();
    let mut model = network();
    let mut opt = optimizer(false);
    let started = std::time::Instant::now();
    let err = Trainer::new(config_with(1, false, batch))
        .unwrap()
        .distributed(Box::new(first))
        .fit(
            &mut model,
            &mut opt,
            Splits::new(&train, &test),
            Hooks::new(),
        )
        .unwrap_err();
    drop(second);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("rank 1 sent nothing"), "{err}");
}

/// Batches of 300 rows: 5 micro-batches in 3 gradient groups of 2, 2 and 1, so with 4 ranks
/// the last rank has no group and the groups' micro-batch counts differ; the partial last
/// batch of 200 rows has 4 groups of one.
#[test]
fn ranks_with_no_group_and_uneven_groups_train_the_one_process_weights() {
    assert_eq!(nabla::train::groups(300), 3);
    assert_eq!(nabla::train::micro_batches_per_group(300), 2);
    let (single, report) = train_batch(config_with(1, false, 300), false, None);
    for size in [3, 4] {
        let members = LocalGroup::new(size, Duration::from_secs(60));
        let handles: Vec<_> = members
            .into_iter()
            .map(|m| {
                let c = config_with(2, false, 300);
                std::thread::spawn(move || train_batch(c, false, Some(Box::new(m))))
            })
            .collect();
        for (rank, h) in handles.into_iter().enumerate() {
            let (w, r) = h.join().unwrap();
            let what = format!("batch 300, {size} ranks, rank {rank}");
            assert!(w == single, "{what}: weights differ");
            same_history(&r, &report, &what);
        }
    }
}
