//! Every differentiable op against central finite differences, on several random shapes
//! including 1×1 and batches of more than one row.

use nabla::autograd::gradcheck::check;
use nabla::kernels::Transpose;
use nabla::rng::{self, ChaCha8Rng, RngExt, Stream};
use nabla::{Grads, NablaError, Params, Tape, Tensor, Var, Workspace};

/// Worst relative disagreement allowed. f32 forward values with ε = 1e-2 give numeric errors
/// around 1e-4..1e-3; a wrong rule gives errors of order 1.
const TOL: f64 = 5e-3;
const EPS: f32 = 1e-2;
const SHAPES: [(usize, usize); 4] = [(1, 1), (1, 5), (4, 3), (7, 6)];

fn rng(seed: u64) -> ChaCha8Rng {
    rng::sub_stream(seed, Stream::Init, 99)
}

/// Values in ±[0.1, 1.1]: away from ReLU's kink so ±ε never crosses it.
fn random(r: &mut ChaCha8Rng, rows: usize, cols: usize) -> Tensor {
    let data = (0..rows * cols)
        .map(|_| {
            let m = 0.1 + r.random::<f32>();
            if r.random::<bool>() { m } else { -m }
        })
        .collect();
    Tensor::from_vec(rows, cols, data).unwrap()
}

/// Reduces a var to a scalar with random weights, so every output element gets its own
/// upstream gradient: L = Σ (y ⊙ R).
fn weighted_sum(tape: &mut Tape, y: Var, seed: u64) -> Result<Var, NablaError> {
    let (r, c) = tape.shape(y);
    let weights = random(&mut rng(seed + 1000), r, c);
    let w = tape.input(&weights);
    let p = tape.mul(y, w)?;
    Ok(tape.sum(p))
}

fn assert_close(
    name: &str,
    shape: (usize, usize),
    result: Result<nabla::autograd::gradcheck::GradCheck, NablaError>,
) {
    let g = result.unwrap_or_else(|e| panic!("{name} {shape:?}: {e}"));
    assert!(g.compared > 0);
    assert!(
        g.max_error < TOL,
        "{name} {shape:?}: max error {} over {} elements",
        g.max_error,
        g.compared
    );
}

fn unary(name: &str, op: impl Fn(&mut Tape, Var) -> Var) {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let x = random(&mut rng(i as u64), r, c);
        let res = check(&[x], EPS, |t, v| {
            let y = op(t, v[0]);
            weighted_sum(t, y, i as u64)
        });
        assert_close(name, (r, c), res);
    }
}

fn binary(name: &str, op: impl Fn(&mut Tape, Var, Var) -> Result<Var, NablaError>) {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let a = random(&mut rng(i as u64), r, c);
        let b = random(&mut rng(i as u64 + 50), r, c);
        let res = check(&[a, b], EPS, |t, v| {
            let y = op(t, v[0], v[1])?;
            weighted_sum(t, y, i as u64)
        });
        assert_close(name, (r, c), res);
    }
}

#[test]
fn add_sub_mul() {
    binary("add", |t, a, b| t.add(a, b));
    binary("sub", |t, a, b| t.sub(a, b));
    binary("mul", |t, a, b| t.mul(a, b));
}

#[test]
fn the_same_value_used_twice_accumulates() {
    // y = a ⊙ a + a: ∂y/∂a = 2a + 1, two contributions into one gradient.
    binary("a*a+a (b unused)", |t, a, _b| {
        let sq = t.mul(a, a)?;
        t.add(sq, a)
    });
}

#[test]
fn scale() {
    unary("scale", |t, a| t.scale(a, -1.7));
}

#[test]
fn activations() {
    unary("relu", |t, a| t.relu(a));
    unary("sigmoid", |t, a| t.sigmoid(a));
    unary("tanh", |t, a| t.tanh(a));
    unary("leaky_relu", |t, a| t.leaky_relu(a, 0.1));
    unary("gelu", |t, a| {
        t.activation(a, nabla::kernels::activation::Activation::Gelu)
    });
}

#[test]
fn softmax_and_log_softmax() {
    unary("softmax", |t, a| t.softmax(a));
    unary("log_softmax", |t, a| t.log_softmax(a));
}

#[test]
fn sum_and_mean() {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let x = random(&mut rng(i as u64), r, c);
        assert_close(
            "sum",
            (r, c),
            check(std::slice::from_ref(&x), EPS, |t, v| Ok(t.sum(v[0]))),
        );
        assert_close(
            "mean",
            (r, c),
            check(&[x], EPS, |t, v| {
                let m = t.mean(v[0]);
                Ok(t.scale(m, 3.0))
            }),
        );
    }
}

#[test]
fn matmul_in_every_transpose_combination() {
    let dims = [(1, 1, 1), (1, 4, 3), (5, 2, 3), (6, 7, 4)];
    for (i, &(m, k, n)) in dims.iter().enumerate() {
        for ta in [Transpose::No, Transpose::Yes] {
            for tb in [Transpose::No, Transpose::Yes] {
                let a_shape = if ta == Transpose::No { (m, k) } else { (k, m) };
                let b_shape = if tb == Transpose::No { (k, n) } else { (n, k) };
                let a = random(&mut rng(i as u64), a_shape.0, a_shape.1);
                let b = random(&mut rng(i as u64 + 7), b_shape.0, b_shape.1);
                let res = check(&[a, b], EPS, |t, v| {
                    let y = t.matmul_t(v[0], ta, v[1], tb)?;
                    weighted_sum(t, y, i as u64)
                });
                assert_close(&format!("matmul {ta:?} {tb:?}"), (m, n), res);
            }
        }
    }
}

#[test]
fn linear_is_x_times_w_transposed_plus_the_bias() {
    for (i, &(m, k, n)) in [(1, 1, 1), (5, 3, 2), (6, 4, 7)].iter().enumerate() {
        let x = random(&mut rng(i as u64), m, k);
        let w = random(&mut rng(i as u64 + 5), n, k);
        let b = random(&mut rng(i as u64 + 9), 1, n);
        let res = check(&[x.clone(), w.clone(), b.clone()], EPS, |t, v| {
            let y = t.linear(v[0], v[1], v[2])?;
            weighted_sum(t, y, i as u64)
        });
        assert_close("linear", (m, n), res);
        // The same bits as the two ops it fuses, forward and backward.
        let (mut fused, mut apart) = (Vec::new(), Vec::new());
        for (fuse, out) in [(true, &mut fused), (false, &mut apart)] {
            let mut params = Params::new();
            let ids = [x.clone(), w.clone(), b.clone()].map(|t| params.add("p", t));
            let mut ws = Workspace::new();
            let mut tape = Tape::new(&params, &mut ws);
            let [xv, wv, bv] = ids.map(|id| tape.param(id));
            let y = if fuse {
                tape.linear(xv, wv, bv).unwrap()
            } else {
                let z = tape
                    .matmul_t(xv, Transpose::No, wv, Transpose::Yes)
                    .unwrap();
                tape.add_row(z, bv).unwrap()
            };
            let l = weighted_sum(&mut tape, y, i as u64).unwrap();
            out.extend_from_slice(tape.value(y).data());
            let mut grads = Grads::zeros_like(&params);
            tape.backward(l, &mut grads).unwrap();
            grads
                .tensors()
                .iter()
                .for_each(|g| out.extend_from_slice(g.data()));
        }
        assert_eq!(fused, apart, "linear vs matmul_t + add_row");
    }
}

#[test]
fn add_row_broadcasts_the_bias() {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let a = random(&mut rng(i as u64), r, c);
        let b = random(&mut rng(i as u64 + 3), 1, c);
        let res = check(&[a, b], EPS, |t, v| {
            let y = t.add_row(v[0], v[1])?;
            weighted_sum(t, y, i as u64)
        });
        assert_close("add_row", (r, c), res);
    }
}

#[test]
fn softmax_cross_entropy() {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let z = random(&mut rng(i as u64), r, c);
        let labels: Vec<u32> = (0..r).map(|j| ((j * 7 + i) % c) as u32).collect();
        let res = check(&[z], EPS, |t, v| {
            let l = t.softmax_cross_entropy(v[0], &labels)?;
            Ok(t.scale(l, 2.5))
        });
        assert_close("softmax_cross_entropy", (r, c), res);
    }
}

#[test]
fn mse() {
    binary("mse", |t, a, b| {
        let l = t.mse(a, b)?;
        Ok(t.scale(l, 1.3))
    });
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    // The checker itself must be able to fail: compare d/dx (x²) against a function whose tape
    // says 2x but whose value is x² + x (by feeding a different forward on perturbation).
    let x = Tensor::from_vec(1, 1, vec![0.7]).unwrap();
    let counter = std::cell::Cell::new(0);
    let res = check(&[x], EPS, |t, v| {
        counter.set(counter.get() + 1);
        let sq = t.mul(v[0], v[0])?;
        let y = if counter.get() == 1 {
            sq
        } else {
            t.add(sq, v[0])?
        };
        Ok(t.sum(y))
    })
    .unwrap();
    assert!(
        res.max_error > 0.1,
        "the check did not notice a wrong gradient"
    );
}

#[test]
fn dropout_with_a_fixed_mask() {
    // The mask comes from a seeded stream, so every re-evaluation draws the same one.
    unary("dropout", |t, a| {
        let mut r = rng::sub_stream(5, Stream::Dropout, 1);
        t.dropout(a, 0.3, &mut r).unwrap()
    });
}

#[test]
fn dropout_keeps_the_expected_value_and_drops_about_p() {
    let params = nabla::Params::new();
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let x = tape.input(&Tensor::from_vec(100, 100, vec![1.0; 10_000]).unwrap());
    let mut r = rng::sub_stream(1, Stream::Dropout, 0);
    let y = tape.dropout(x, 0.25, &mut r).unwrap();
    let v = tape.value(y).data();
    let dropped = v.iter().filter(|&&e| e == 0.0).count() as f64 / v.len() as f64;
    let mean = v.iter().map(|&e| e as f64).sum::<f64>() / v.len() as f64;
    assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
    assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
    assert!(tape.dropout(x, 1.0, &mut r).is_err());
}

#[test]
fn batch_norm_and_affine_rows() {
    for (i, &(r, c)) in [(2, 1), (4, 3), (7, 6)].iter().enumerate() {
        let x = random(&mut rng(i as u64), r, c);
        let g = random(&mut rng(i as u64 + 20), 1, c);
        let b = random(&mut rng(i as u64 + 30), 1, c);
        let res = check(&[x.clone(), g.clone(), b.clone()], EPS, |t, v| {
            let y = t.batch_norm(v[0], v[1], v[2], 1e-5)?;
            weighted_sum(t, y, i as u64)
        });
        assert_close("batch_norm", (r, c), res);
        let res = check(&[x, g, b], EPS, |t, v| {
            let y = t.affine_rows(v[0], v[1], v[2])?;
            weighted_sum(t, y, i as u64)
        });
        assert_close("affine_rows", (r, c), res);
    }
}

#[test]
fn batch_norm_normalises_each_column() {
    let params = nabla::Params::new();
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let x = tape.input(&random(&mut rng(3), 50, 4));
    let g = tape.input(&Tensor::from_vec(1, 4, vec![1.0; 4]).unwrap());
    let b = tape.input(&Tensor::zeros(1, 4));
    let y = tape.batch_norm(x, g, b, 1e-5).unwrap();
    let v = tape.value(y);
    for col in 0..4 {
        let column: Vec<f64> = (0..50).map(|r| v.get(r, col) as f64).collect();
        let mean = column.iter().sum::<f64>() / 50.0;
        let var = column.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / 50.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "col {col}: {mean} {var}"
        );
    }
    let (mean, var) = tape.batch_statistics(y).unwrap();
    assert_eq!((mean.len(), var.len()), (4, 4));
}
