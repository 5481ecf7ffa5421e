//! Finite-difference checks of the N-d ops (tensors of any rank, broadcasting) and of the open
//! op API used from outside the crate, the way a user's crate would.

mod common;
use common::{positive, values, weighted_sum};
use nabla::autograd::ops::broadcast::BinaryKind;
use nabla::autograd::{Backward, CustomOp};
use nabla::{NablaError, Params, Tape, Tensor, Workspace, gradcheck};

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

use nabla::autograd::ops::axes::ReduceKind;
use nabla::autograd::ops::unary::UnaryKind;
use nabla::kernels::activation::Activation;

const SHAPES: &[&[usize]] = &[&[5], &[2, 3], &[2, 1, 3], &[2, 2, 1, 3], &[1, 2, 2, 1, 2]];

fn assert_close(what: &str, check: nabla::autograd::gradcheck::GradCheck, tol: f64) {
    assert!(check.max_error < tol, "{what}: {check:?}");
}

#[test]
fn unary_ops_on_every_rank_match_finite_differences() {
    let kinds = [
        UnaryKind::Neg,
        UnaryKind::Exp,
        UnaryKind::Log,
        UnaryKind::Sqrt,
        UnaryKind::Abs,
        UnaryKind::Clamp {
            min: -0.4,
            max: 0.5,
        },
        UnaryKind::Powf(2.5),
        UnaryKind::GeluTanh,
        UnaryKind::GeluErf,
        UnaryKind::Silu,
    ];
    for kind in kinds {
        for (k, shape) in SHAPES.iter().enumerate() {
            let x = match kind {
                UnaryKind::Log | UnaryKind::Sqrt | UnaryKind::Powf(_) => positive(shape, k as u64),
                _ => values(shape, k as u64),
            };
            let check = gradcheck::check(&[x], 1e-3, |tape, v| {
                let y = tape.unary(v[0], kind)?;
                weighted_sum(tape, y, 3)
            })
            .unwrap();
            assert_close(&format!("{kind:?} on {shape:?}"), check, 2e-2);
        }
    }
}

#[test]
fn activations_keep_the_rank_and_match_finite_differences() {
    for f in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Gelu,
    ] {
        for shape in SHAPES {
            let check = gradcheck::check(&[values(shape, 2)], 1e-3, |tape, v| {
                let y = tape.activation(v[0], f);
                assert_eq!(tape.dims(y), *shape);
                weighted_sum(tape, y, 4)
            })
            .unwrap();
            assert_close(&format!("{f:?} on {shape:?}"), check, 2e-2);
        }
    }
}

/// Input shape, axes, output shape without and with `keepdim`.
type ReduceCase = (
    &'static [usize],
    &'static [isize],
    &'static [usize],
    &'static [usize],
);

#[test]
fn reductions_along_axes_match_finite_differences_and_shapes() {
    let kinds = [
        ReduceKind::Sum,
        ReduceKind::Mean,
        ReduceKind::Max,
        ReduceKind::LogSumExp,
        ReduceKind::Var { unbiased: true },
        ReduceKind::Var { unbiased: false },
    ];
    let cases: &[ReduceCase] = &[
        (&[2, 3], &[-1], &[2], &[2, 1]),
        (&[2, 3, 4], &[0, 2], &[3], &[1, 3, 1]),
        (&[3, 2, 2, 3], &[1], &[3, 2, 3], &[3, 1, 2, 3]),
        (&[2, 2, 2, 2, 3], &[0, 1, 2, 3, 4], &[], &[1, 1, 1, 1, 1]),
    ];
    for kind in kinds {
        for &(shape, axes, dropped, kept) in cases {
            for keepdim in [false, true] {
                let check = gradcheck::check(&[values(shape, 7)], 1e-3, |tape, v| {
                    let y = tape.reduce(v[0], kind, axes, keepdim)?;
                    assert_eq!(tape.dims(y), if keepdim { kept } else { dropped });
                    weighted_sum(tape, y, 8)
                })
                .unwrap();
                assert_close(&format!("{kind:?} {shape:?} {axes:?}"), check, 2e-2);
            }
        }
    }
}

#[test]
fn reductions_give_the_reference_values() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let data = vec![1.0, 5.0, 3.0, 2.0, 8.0, 0.0];
    let x = tape.input(&Tensor::from_shape(&[2, 3], data).unwrap());
    let v = tape.var_axes(x, &[1], false, true).unwrap();
    // numpy.var([[1, 5, 3], [2, 8, 0]], axis=1, ddof=1) = [4, 17.333333]
    let want_var = [4.0, 52.0 / 3.0];
    for (got, want) in tape.value(v).data().iter().zip(want_var) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    let l = tape.logsumexp(x, &[0], false).unwrap();
    let want = [
        (1f64.exp() + 2f64.exp()).ln(),
        (5f64.exp() + 8f64.exp()).ln(),
        (3f64.exp() + 1.0).ln(),
    ];
    for (got, want) in tape.value(l).data().iter().zip(want) {
        assert!((*got as f64 - want).abs() < 1e-5);
    }
    assert_eq!(tape.argmax_axis(x, -1).unwrap(), vec![1, 1]);
    assert_eq!(tape.argmax_axis(x, 0).unwrap(), vec![1, 1, 0]);
    let e = tape.sum_axes(x, &[1, -1], false).unwrap_err().to_string();
    assert!(e.contains("twice"), "{e}");
    let e = tape.sum_axes(x, &[2], false).unwrap_err().to_string();
    assert!(e.contains("axis 2") && e.contains("[2, 3]"), "{e}");
}

#[test]
fn softmax_along_any_axis_matches_finite_differences_and_sums_to_one() {
    for shape in [&[4][..], &[2, 3], &[2, 3, 4], &[2, 1, 3, 2]] {
        for axis in -(shape.len() as isize)..shape.len() as isize {
            for log in [false, true] {
                let check = gradcheck::check(&[values(shape, 3)], 1e-3, |tape, v| {
                    let y = if log {
                        tape.log_softmax_axis(v[0], axis)?
                    } else {
                        tape.softmax_axis(v[0], axis)?
                    };
                    weighted_sum(tape, y, 2)
                })
                .unwrap();
                assert_close(
                    &format!("softmax {shape:?} axis {axis} log {log}"),
                    check,
                    2e-2,
                );
            }
        }
    }
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let x = tape.input(&values(&[2, 3, 4], 1));
    let y = tape.softmax_axis(x, 1).unwrap();
    let s = tape.sum_axes(y, &[1], false).unwrap();
    assert!(tape.value(s).data().iter().all(|v| (v - 1.0).abs() < 1e-6));
}

#[test]
fn where_and_masked_fill_route_gradients_by_the_mask() {
    let mask = Tensor::from_shape(&[3, 1], vec![1.0, 0.0, 1.0]).unwrap();
    let check = gradcheck::check(&[values(&[3, 4], 1), values(&[4], 2)], 1e-3, |tape, v| {
        let m = tape.input(&mask);
        let y = tape.where_cond(m, v[0], v[1])?;
        weighted_sum(tape, y, 3)
    })
    .unwrap();
    assert_close("where", check, 1e-2);
    // A causal mask: -1e9 above the diagonal, then softmax: those weights are 0.
    let causal = Tensor::from_shape(&[3, 3], vec![0., 1., 1., 0., 0., 1., 0., 0., 0.]).unwrap();
    let check = gradcheck::check(&[values(&[2, 3, 3], 4)], 1e-3, |tape, v| {
        let m = tape.input(&causal);
        let y = tape.masked_fill(v[0], m, -1e9)?;
        let p = tape.softmax_axis(y, -1)?;
        weighted_sum(tape, p, 5)
    })
    .unwrap();
    assert_close("masked_fill + softmax", check, 1e-2);
}

#[test]
fn layer_norm_on_rank_three_matches_finite_differences() {
    let inputs = [values(&[2, 3, 5], 1), positive(&[5], 2), values(&[5], 3)];
    let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
        let y = tape.layer_norm(v[0], v[1], v[2], 1e-5)?;
        weighted_sum(tape, y, 4)
    })
    .unwrap();
    assert_close("layer_norm", check, 2e-2);
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let x = tape.input(&values(&[2, 5], 1));
    let g = tape.input(&values(&[4], 1));
    let e = tape.layer_norm(x, g, g, 1e-5).unwrap_err().to_string();
    assert!(
        e.contains("layer_norm") && e.contains("[2, 5]") && e.contains("[4]"),
        "{e}"
    );
}

#[test]
fn dropout_and_linear_take_any_rank() {
    let check = gradcheck::check(&[values(&[2, 3, 4], 1)], 1e-3, |tape, v| {
        let mut rng = nabla::rng::stream(3, nabla::rng::Stream::Dropout);
        let y = tape.dropout(v[0], 0.3, &mut rng)?;
        assert_eq!(tape.dims(y), &[2, 3, 4]);
        weighted_sum(tape, y, 2)
    })
    .unwrap();
    assert_close("dropout rank 3", check, 1e-2);
    let inputs = [
        values(&[2, 3, 4], 1),
        values(&[5, 4], 2),
        values(&[1, 5], 3),
    ];
    let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
        let y = tape.linear(v[0], v[1], v[2])?;
        assert_eq!(tape.dims(y), &[2, 3, 5]);
        weighted_sum(tape, y, 4)
    })
    .unwrap();
    assert_close("linear on [2, 3, 4]", check, 1e-2);
}
