//! Finite-difference checks of the N-d ops (tensors of any rank, broadcasting) and of the open
//! op API used from outside the crate, the way a user's crate would.

use nabla::autograd::ops::broadcast::BinaryKind;
use nabla::autograd::{Backward, CustomOp};
use nabla::{NablaError, Params, Tape, Tensor, Workspace, gradcheck};

/// Deterministic values in `[-1, 1)` for a tensor of `shape` (a small LCG: no dependency).
fn values(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_shape(shape, data).unwrap()
}

/// Positive values in `[0.5, 1.5)`.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    let t = values(shape, seed);
    Tensor::from_shape(shape, t.data().iter().map(|v| 1.0 + v / 2.0).collect()).unwrap()
}

/// `Σ w ⊙ f(...)` with fixed weights, so every output element's gradient differs.
fn weighted_sum(tape: &mut Tape, y: nabla::Var, seed: u64) -> Result<nabla::Var, NablaError> {
    let w = tape.input(&values(tape.dims(y), seed));
    let p = tape.mul(y, w)?;
    Ok(tape.sum(p))
}

const SHAPE_PAIRS: &[(&[usize], &[usize])] = &[
    (&[2, 3], &[2, 3]),
    (&[2, 3, 4], &[4]),
    (&[2, 1, 4], &[3, 1]),
    (&[1], &[2, 2, 1, 3]),
    (&[3, 1, 2, 1, 2], &[1, 2, 1, 3, 1]),
];

#[test]
fn broadcast_binary_ops_match_finite_differences() {
    for kind in [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::Maximum,
        BinaryKind::Minimum,
        BinaryKind::Pow,
    ] {
        for (k, &(sa, sb)) in SHAPE_PAIRS.iter().enumerate() {
            let (a, b) = match kind {
                BinaryKind::Div | BinaryKind::Pow => (positive(sa, 1 + k as u64), positive(sb, 9)),
                _ => (values(sa, 1 + k as u64), values(sb, 9)),
            };
            let check = gradcheck::check(&[a, b], 1e-3, |tape, v| {
                let y = tape.broadcast(v[0], v[1], kind)?;
                weighted_sum(tape, y, 5)
            })
            .unwrap();
            assert!(
                check.max_error < 2e-2,
                "{kind:?} {sa:?} with {sb:?}: {check:?}"
            );
        }
    }
}

#[test]
fn add_sub_mul_broadcast_and_keep_their_fast_path_for_equal_shapes() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let a = tape.input(&values(&[2, 3, 4], 1));
    let b = tape.input(&values(&[3, 1], 2));
    let c = tape.add(a, b).unwrap();
    assert_eq!(tape.dims(c), &[2, 3, 4]);
    let d = tape.mul(c, c).unwrap();
    assert_eq!(tape.dims(d), &[2, 3, 4]);
    let bad = tape.input(&values(&[5], 3));
    let e = tape.sub(a, bad).unwrap_err().to_string();
    assert!(
        e.contains("[2, 3, 4]") && e.contains("[5]") && e.contains("sub"),
        "{e}"
    );
}

/// A user's op: `y = x · sigmoid(x)` (SiLU) written against the public trait only.
struct MySilu;

impl CustomOp for MySilu {
    fn name(&self) -> &str {
        "my_silu"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        saved: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let s: Vec<f32> = x[0]
            .data()
            .iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect();
        let y = x[0].data().iter().zip(&s).map(|(v, s)| v * s).collect();
        *out = Tensor::from_shape(x[0].dims(), y)?;
        saved.push(Tensor::from_shape(x[0].dims(), s)?);
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        // ∂y/∂x = s + x·s·(1 − s)
        let (x, s) = (b.inputs[0].data(), b.saved[0].data());
        let g = (0..x.len()).map(|i| b.upstream.data()[i] * (s[i] + x[i] * s[i] * (1.0 - s[i])));
        Ok(vec![Some(Tensor::from_shape(
            b.inputs[0].dims(),
            g.collect(),
        )?)])
    }
}

/// A broken op: returns a gradient of the wrong shape.
struct WrongShape;

impl CustomOp for WrongShape {
    fn name(&self) -> &str {
        "wrong_shape"
    }
    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        _: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        out.copy_from(x[0]);
        Ok(())
    }
    fn backward(&self, _: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        Ok(vec![Some(Tensor::zeros(1, 1))])
    }
}

#[test]
fn a_custom_op_from_another_crate_is_gradchecked_and_composes_with_built_in_ops() {
    let x = values(&[2, 3, 2], 4);
    let check = gradcheck::check(&[x], 1e-3, |tape, v| {
        let y = tape.custom(MySilu, &[v[0]])?;
        let z = tape.add(y, v[0])?; // the same input read twice: gradients add
        weighted_sum(tape, z, 6)
    })
    .unwrap();
    assert!(check.max_error < 1e-2, "{check:?}");
    assert_eq!(check.compared, 12);
}

#[test]
fn a_custom_op_whose_gradient_has_the_wrong_shape_fails_loudly() {
    let e = gradcheck::check(&[values(&[2, 2], 1)], 1e-3, |tape, v| {
        let y = tape.custom(WrongShape, &[v[0]])?;
        Ok(tape.sum(y))
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("wrong_shape") && e.contains("[2, 2]"), "{e}");
}

#[test]
fn a_custom_op_on_a_parameter_reaches_the_parameter_gradient() {
    let mut params = Params::new();
    let w = params.add("w", values(&[2, 3], 8));
    let mut grads = nabla::Grads::zeros_like(&params);
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let wv = tape.param(w);
    let y = tape.custom(MySilu, &[wv]).unwrap();
    let loss = tape.sum(y);
    tape.backward(loss, &mut grads).unwrap();
    let g = grads.get(w).data();
    assert!(g.iter().all(|v| *v != 0.0), "{g:?}");
}
