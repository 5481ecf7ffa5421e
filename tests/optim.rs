//! Optimizers and losses against reference values computed once with PyTorch (float64):
//! bench/reference/optim_reference.py made bench/reference/optim_reference.txt, which this test
//! reads. Parameters start at p0 and receive a fixed gradient sequence for 5 steps; the
//! optimizers are compared with the float32 trajectories (`f32_` lines) to 1e-6 relative.

use nabla::Tensor;
use nabla::autograd::{Grads, Params, Tape, Workspace};
use nabla::optim::{Adagrad, Adam, Optimizer, RmsProp, Sgd};

const REFERENCE: &str = include_str!("../bench/reference/optim_reference.txt");
const P0: [f32; 5] = [0.5, -1.25, 2.0, 0.0, -0.3];

/// The gradient fed at step t (1-based), as in the reference script.
fn gradient(t: usize) -> Vec<f32> {
    let t64 = t as f64;
    vec![
        (0.1 * t64) as f32,
        -0.2,
        (0.3 / t64) as f32,
        if t.is_multiple_of(2) { 0.05 } else { -0.05 },
        (1.5 - 0.25 * t64) as f32,
    ]
}

/// `name step=N params=[...]` lines of the reference file, in step order.
fn reference(name: &str) -> Vec<Vec<f64>> {
    let prefix = format!("{name} step=");
    let rows: Vec<Vec<f64>> = REFERENCE
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| parse_list(l.split_once("params=").unwrap().1))
        .collect();
    assert_eq!(rows.len(), 5, "reference for {name}");
    rows
}

fn parse_list(s: &str) -> Vec<f64> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

fn assert_matches(name: &str, got: &[f32], want: &[f64], step: usize) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        // 1e-6 relative, with a floor for values that are exactly 0 in the reference.
        let tol = 1e-6 * w.abs().max(1e-2);
        assert!(
            (g as f64 - w).abs() <= tol,
            "{name} step {step} param {i}: {g} vs reference {w}"
        );
    }
}

fn run(name: &str, mut opt: Optimizer) {
    let mut params = Params::new();
    let id = params.add("p", Tensor::from_vec(1, 5, P0.to_vec()).unwrap());
    let want = reference(&format!("f32_{name}"));
    let mut grads = Grads::zeros_like(&params);
    for (t, expected) in want.iter().enumerate() {
        grads.tensors_mut()[0]
            .data_mut()
            .copy_from_slice(&gradient(t + 1));
        opt.step(&mut params, &grads);
        assert_matches(name, params.get(id).data(), expected, t + 1);
    }
}

#[test]
fn sgd_matches_pytorch() {
    run("sgd", Optimizer::Sgd(Sgd::new(0.1, 0.0)));
    run("sgd_momentum", Optimizer::Sgd(Sgd::new(0.1, 0.9)));
    let mut nesterov = Sgd::new(0.1, 0.9);
    nesterov.nesterov = true;
    run("sgd_nesterov", Optimizer::Sgd(nesterov));
    let mut wd = Sgd::new(0.1, 0.9);
    wd.weight_decay = 0.01;
    run("sgd_momentum_wd", Optimizer::Sgd(wd));
}

#[test]
fn adam_and_adamw_match_pytorch() {
    run("adam", Optimizer::Adam(Adam::new(0.01)));
    let mut l2 = Adam::new(0.01);
    l2.weight_decay = 0.01;
    run("adam_wd", Optimizer::Adam(l2));
    run("adamw", Optimizer::Adam(Adam::adamw(0.01, 0.01)));
}

#[test]
fn rmsprop_and_adagrad_match_pytorch() {
    run("rmsprop", Optimizer::RmsProp(RmsProp::new(0.01)));
    let mut momentum = RmsProp::new(0.01);
    momentum.momentum = 0.9;
    run("rmsprop_momentum", Optimizer::RmsProp(momentum));
    run("adagrad", Optimizer::Adagrad(Adagrad::new(0.1)));
}

fn reference_value(key: &str) -> Vec<f64> {
    let line = REFERENCE
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in the reference file"));
    let list = line.split_once('=').unwrap().1;
    let list = list.split_once('=').map(|x| x.1).unwrap_or(list);
    list.replace(['[', ']'], "")
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

fn close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (*g as f64 - w).abs() <= 1e-6 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        );
    }
}

#[test]
fn losses_and_softmax_match_pytorch() {
    let params = Params::new();
    let mut grads = Grads::zeros_like(&params);
    let mut ws = Workspace::new();
    let logits = Tensor::from_vec(2, 3, vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0]).unwrap();

    let mut tape = Tape::new(&params, &mut ws);
    let z = tape.leaf(&logits, true);
    let p = tape.softmax(z);
    let lp = tape.log_softmax(z);
    close(
        tape.value(p).data(),
        &reference_value("softmax dim=1"),
        "softmax",
    );
    close(
        tape.value(lp).data(),
        &reference_value("log_softmax dim=1"),
        "log_softmax",
    );

    let mut tape = Tape::new(&params, &mut ws);
    let z = tape.leaf(&logits, true);
    let loss = tape.softmax_cross_entropy(z, &[1, 2]).unwrap();
    close(
        tape.value(loss).data(),
        &reference_value("cross_entropy_mean value"),
        "CE value",
    );
    tape.backward(loss, &mut grads).unwrap();
    close(
        tape.grad(z).unwrap().data(),
        &reference_value("cross_entropy_mean grad"),
        "CE grad",
    );

    let pred = Tensor::from_vec(2, 2, vec![0.5, 1.5, 2.0, -1.0]).unwrap();
    let target = Tensor::from_vec(2, 2, vec![1.0, 1.0, 0.0, 0.0]).unwrap();
    let mut tape = Tape::new(&params, &mut ws);
    let pv = tape.leaf(&pred, true);
    let tv = tape.input(&target);
    let loss = tape.mse(pv, tv).unwrap();
    close(
        tape.value(loss).data(),
        &reference_value("mse_mean value"),
        "MSE value",
    );
    tape.backward(loss, &mut grads).unwrap();
    close(
        tape.grad(pv).unwrap().data(),
        &reference_value("mse_mean grad"),
        "MSE grad",
    );
}
