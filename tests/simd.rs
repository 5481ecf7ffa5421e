//! nabla's vector kernels against scalar references written out here, element by element, with
//! every code path forced in turn (`scalar`, `avx2`, `avx512`): each must give the reference's
//! exact bits. A path this CPU lacks is reported as skipped on stderr (run with
//! `--nocapture` to see it), never counted as passed silently. Whole training runs must give
//! the same weights at every level too. `.ci/avx512-emulated.sh` runs this file on an emulated
//! AVX-512 CPU (Bochs) and fails if any AVX-512 case is skipped there.

use nabla::prelude::*;
use nabla::simd::update::{AdamCoefficients, SgdCoefficients};
use nabla::simd::{self, Level, elementwise as ew, update};

/// Levels this CPU can run; prints the ones skipped.
fn levels(test: &str) -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|&l| {
            let ok = l <= simd::detected();
            if !ok {
                eprintln!(
                    "{test}: SKIPPED level {l}: this CPU supports up to {}",
                    simd::detected()
                );
            }
            ok
        })
        .collect()
}

/// Deterministic values in about ±2, with zeros and exact ties sprinkled in.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            if i % 17 == 3 {
                0.0
            } else {
                (s % 40_000) as f32 / 10_000.0 - 2.0
            }
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Odd lengths, so every vector loop's remainder runs too.
const LENGTHS: [usize; 4] = [1, 15, 33, 1029];

#[test]
fn conversions_sums_and_checks_match_scalar_references() {
    for level in levels("elementwise") {
        for n in LENGTHS {
            let (a, b, c) = (values(n, 1), values(n, 2), values(n, 3));
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let mut out = vec![0.0f32; n];
            ew::u8_to_f32(level, &bytes, 1.0 / 255.0, &mut out);
            let want: Vec<f32> = bytes.iter().map(|&x| x as f32 * (1.0 / 255.0)).collect();
            assert_eq!(bits(&out), bits(&want), "u8_to_f32 {level} n={n}");

            for scale in [1.0f32, 0.37] {
                ew::add_scaled(level, &a, &b, scale, &mut out);
                let want: Vec<f32> = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| if scale == 1.0 { x + y } else { (x + y) * scale })
                    .collect();
                assert_eq!(bits(&out), bits(&want), "add_scaled {level} n={n}");
            }
            let mut acc = a.clone();
            ew::add_assign(level, &mut acc, &c);
            let want: Vec<f32> = a.iter().zip(&c).map(|(x, y)| x + y).collect();
            assert_eq!(bits(&acc), bits(&want), "add_assign {level} n={n}");
            ew::scale_into(level, &a, 0.5, &mut out);
            let want: Vec<f32> = a.iter().map(|x| x * 0.5).collect();
            assert_eq!(bits(&out), bits(&want), "scale_into {level} n={n}");

            assert!(ew::all_finite(level, &a), "all_finite {level} n={n}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, n / 2, n - 1] {
                    let mut v = a.clone();
                    v[at] = bad;
                    assert!(!ew::all_finite(level, &v), "{bad} at {at} {level} n={n}");
                }
            }
        }
    }
}

#[test]
fn relu_and_its_derivative_match_scalar_references() {
    for level in levels("relu") {
        for n in LENGTHS {
            let (x, u, d0) = (values(n, 4), values(n, 5), values(n, 6));
            let mut y = vec![0.0f32; n];
            ew::relu(level, &x, &mut y);
            let want: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
            assert_eq!(bits(&y), bits(&want), "relu {level} n={n}");
            for accumulate in [false, true] {
                let mut d = d0.clone();
                ew::relu_backward(level, &x, &u, &mut d, accumulate);
                let want: Vec<f32> = (0..n)
                    .map(|i| {
                        let local = if x[i] > 0.0 { u[i] } else { 0.0 };
                        if accumulate { d0[i] + local } else { local }
                    })
                    .collect();
                assert_eq!(bits(&d), bits(&want), "relu' {level} {accumulate} n={n}");
            }
        }
    }
}

fn adam_reference(p: &mut [f32], g: &[f32], mv: &mut [f32], c: &AdamCoefficients) {
    for i in 0..p.len() {
        let gv = if c.decoupled {
            p[i] *= c.decay;
            g[i]
        } else {
            g[i] + c.wd * p[i]
        };
        mv[2 * i] = c.b1 * mv[2 * i] + c.one_minus_b1 * gv;
        mv[2 * i + 1] = c.b2 * mv[2 * i + 1] + c.one_minus_b2 * gv * gv;
        p[i] -= c.step_size * mv[2 * i] / (mv[2 * i + 1].sqrt() / c.bc2_sqrt + c.eps);
    }
}

#[test]
fn adam_updates_match_the_scalar_formula() {
    for level in levels("adam") {
        for n in LENGTHS {
            for decoupled in [false, true] {
                let c = AdamCoefficients {
                    b1: 0.9,
                    b2: 0.999,
                    one_minus_b1: 0.1,
                    one_minus_b2: 0.001,
                    eps: 1e-8,
                    wd: if decoupled { 0.0 } else { 0.01 },
                    decay: if decoupled { 0.9999 } else { 1.0 },
                    decoupled,
                    step_size: 0.0013,
                    bc2_sqrt: 0.031,
                };
                let g = values(n, 7);
                let mv0: Vec<f32> = values(2 * n, 8).iter().map(|v| v.abs() * 0.01).collect();
                let (mut p, mut mv) = (values(n, 9), mv0.clone());
                let (mut rp, mut rmv) = (p.clone(), mv0);
                for _ in 0..3 {
                    update::adam(level, &mut p, &g, &mut mv, &c);
                    adam_reference(&mut rp, &g, &mut rmv, &c);
                }
                assert_eq!(bits(&p), bits(&rp), "adam θ {level} n={n} {decoupled}");
                assert_eq!(bits(&mv), bits(&rmv), "adam m,v {level} n={n} {decoupled}");
            }
        }
    }
}

fn sgd_reference(p: &mut [f32], g: &[f32], b: &mut [f32], c: &SgdCoefficients) {
    for i in 0..p.len() {
        let d = g[i] + c.wd * p[i];
        if c.mu == 0.0 {
            p[i] -= c.lr * d;
            continue;
        }
        b[i] = if c.started { c.mu * b[i] + d } else { d };
        p[i] -= c.lr * if c.nesterov { d + c.mu * b[i] } else { b[i] };
    }
}

#[test]
fn sgd_updates_match_the_scalar_formula() {
    for level in levels("sgd") {
        for n in LENGTHS {
            for (mu, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
                let g = values(n, 10);
                let (mut p, mut b) = (values(n, 11), vec![0.0f32; if mu == 0.0 { 0 } else { n }]);
                let (mut rp, mut rb) = (p.clone(), b.clone());
                for step in 0..3 {
                    let c = SgdCoefficients {
                        lr: 0.05,
                        mu,
                        wd: 0.001,
                        nesterov,
                        started: step > 0,
                    };
                    update::sgd(level, &mut p, &g, &mut b, &c);
                    sgd_reference(&mut rp, &g, &mut rb, &c);
                }
                assert_eq!(bits(&p), bits(&rp), "sgd θ {level} n={n} μ={mu} {nesterov}");
                assert_eq!(bits(&b), bits(&rb), "sgd b {level} n={n} μ={mu} {nesterov}");
            }
        }
    }
}

/// Trains the digits MLP for one epoch with the kernels capped at `level`.
fn train_at(level: Level, batch: usize, adam: bool, threads: usize) -> Vec<u32> {
    simd::set_max_level(level);
    let d = builtin::digits().unwrap();
    let rows: Vec<usize> = (0..600).collect();
    let train = d.subset(&rows, "train");
    let spec = ModelSpec::mlp_with(64, &[32], Activation::Relu, 10, false, 0.0);
    let mut model = Network::from_spec(&spec, 3).unwrap();
    let mut opt = if adam {
        Optimizer::Adam(Adam::new(0.01))
    } else {
        Optimizer::Sgd(Sgd::new(0.1, 0.9))
    };
    let mut trainer = Trainer::new(TrainConfig::new(1, batch, 5, threads)).unwrap();
    let splits = Splits::train_only(&train);
    trainer
        .fit(&mut model, &mut opt, splits, Hooks::new())
        .unwrap();
    simd::set_max_level(Level::Avx512);
    model.tensors().iter().flat_map(|t| bits(t.data)).collect()
}

/// The level only changes speed: the same weights at every level the CPU has, with 1 or 2
/// threads, at a small batch (micro-batches of half the batch) and a large one.
#[test]
fn training_gives_the_same_weights_at_every_level_and_thread_count() {
    for (batch, adam) in [(32, true), (200, false)] {
        let reference = train_at(Level::Scalar, batch, adam, 1);
        for level in levels("training") {
            for threads in [1, 2] {
                let got = train_at(level, batch, adam, threads);
                assert!(
                    got == reference,
                    "batch {batch} at {level}, {threads} threads"
                );
            }
        }
    }
}

#[test]
fn the_level_in_force_is_capped_by_the_switch() {
    for level in levels("cap") {
        simd::set_max_level(level);
        assert!(simd::level() <= level);
    }
    simd::set_max_level(Level::Avx512);
    assert_eq!(Level::parse("AVX2"), Some(Level::Avx2));
    assert_eq!(Level::parse("scalar"), Some(Level::Scalar));
    assert_eq!(Level::parse("sse9"), None);
}
