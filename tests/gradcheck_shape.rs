//! Finite-difference checks of the shape ops (reshape, permute, transpose, narrow,
//! unsqueeze, squeeze, broadcast_to, concat, stack, split, chunk), the batched matmul (and a
//! naive triple loop beside it) and the index ops (index_select, gather, embedding), on
//! tensors of rank 1 to 5.

mod common;
use common::{values, weighted_sum};
use nabla::{NablaError, Params, Tape, Tensor, Var, Workspace, gradcheck};

/// Gradchecks `f` on one input of `shape`.
fn check1(what: &str, shape: &[usize], f: impl Fn(&mut Tape, Var) -> Result<Var, NablaError>) {
    let check = gradcheck::check(&[values(shape, 3)], 1e-3, |tape, v| {
        let y = f(tape, v[0])?;
        weighted_sum(tape, y, 7)
    })
    .unwrap_or_else(|e| panic!("{what} on {shape:?}: {e}"));
    assert!(check.max_error < 1e-2, "{what} on {shape:?}: {check:?}");
    assert_eq!(check.compared, shape.iter().product::<usize>());
}

const SHAPES: &[&[usize]] = &[&[5], &[2, 3], &[2, 3, 4], &[2, 1, 3, 2], &[2, 2, 1, 3, 2]];

#[test]
fn reshape_permute_transpose_match_finite_differences() {
    for &s in SHAPES {
        check1("reshape", s, |t, x| t.reshape(x, &[usize::MAX]));
        check1("reshape", s, |t, x| t.reshape(x, &[1, usize::MAX, 1]));
        let order: Vec<isize> = (0..s.len() as isize).rev().collect();
        check1("permute", s, |t, x| t.permute(x, &order));
        check1("transpose", s, |t, x| t.transpose(x, 0, -1));
    }
    // A rotation of the axes, and transposing the matrices of a batch (then reshaping the
    // non-contiguous result, which copies).
    check1("permute", &[2, 3, 4], |t, x| t.permute(x, &[1, -1, 0]));
    check1("transpose+reshape", &[2, 3, 4, 2], |t, x| {
        let y = t.transpose(x, -2, -1)?;
        t.reshape(y, &[4, usize::MAX])
    });
}

#[test]
fn narrow_unsqueeze_squeeze_broadcast_match_finite_differences() {
    for &s in SHAPES {
        let last = *s.last().unwrap();
        check1("narrow", s, |t, x| t.narrow(x, -1, 1, last - 1));
        check1("narrow", s, |t, x| t.narrow(x, 0, 0, 1));
        check1("unsqueeze+squeeze", s, |t, x| {
            let y = t.unsqueeze(x, -1)?;
            let y = t.squeeze(y, -1)?;
            t.unsqueeze(y, 0)
        });
        // New leading axes and every size-1 axis repeated: the gradient sums back.
        let mut to = vec![2];
        to.extend(s.iter().map(|&d| if d == 1 { 3 } else { d }));
        check1("broadcast_to", s, |t, x| t.broadcast_to(x, &to));
    }
    check1("broadcast_to", &[3, 1], |t, x| {
        t.broadcast_to(x, &[2, 3, 4])
    });
}

#[test]
fn concat_stack_split_chunk_match_finite_differences() {
    for (k, &s) in SHAPES.iter().enumerate() {
        let mut other = s.to_vec();
        other[0] += 1;
        let inputs = [values(s, 1 + k as u64), values(&other, 2), values(s, 3)];
        let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
            let c = tape.concat(&[v[0], v[1], v[0]], 0)?;
            let st = tape.stack(&[v[0], v[2]], -1)?;
            let a = weighted_sum(tape, c, 4)?;
            let b = weighted_sum(tape, st, 5)?;
            tape.add(a, b)
        })
        .unwrap();
        assert!(check.max_error < 1e-2, "concat/stack on {s:?}: {check:?}");

        let last = *s.last().unwrap();
        check1("split", s, |t, x| {
            let parts = t.split(x, &[1, last - 1], -1)?;
            t.concat(&[parts[1], parts[0]], -1)
        });
        check1("chunk", s, |t, x| {
            let parts = t.chunk(x, 2, 0)?;
            let last = *parts.last().unwrap();
            t.concat(&[last, parts[0]], 0)
        });
    }
}

#[test]
fn concat_stack_and_split_compute_the_expected_values() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let a = tape.input(&Tensor::from_shape(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    let b = tape.input(&Tensor::from_shape(&[2, 1], vec![5.0, 6.0]).unwrap());
    let c = tape.concat(&[a, b], -1).unwrap();
    assert_eq!(tape.dims(c), &[2, 3]);
    assert_eq!(tape.value(c).data(), &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let s = tape.stack(&[a, a], 1).unwrap();
    assert_eq!(tape.dims(s), &[2, 2, 2]);
    assert_eq!(
        tape.value(s).data(),
        &[1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]
    );
    let parts = tape.chunk(c, 2, 1).unwrap();
    let sizes: Vec<&[usize]> = parts.iter().map(|&p| tape.dims(p)).collect();
    assert_eq!(sizes, [&[2, 2][..], &[2, 1][..]]);
    assert_eq!(tape.chunk(c, 5, 1).unwrap().len(), 3, "as torch.chunk");

    let e = tape.concat(&[a, b], 0).unwrap_err().to_string();
    assert!(
        e.contains("concat") && e.contains("[2, 2]") && e.contains("[2, 1]"),
        "{e}"
    );
    let e = tape.split(c, &[1, 1], 1).unwrap_err().to_string();
    assert!(
        e.contains("split") && e.contains("[1, 1]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = tape.permute(c, &[0, 0]).unwrap_err().to_string();
    assert!(e.contains("permute") && e.contains("[2, 3]"), "{e}");
    let e = tape.reshape(c, &[4, usize::MAX]).unwrap_err().to_string();
    assert!(
        e.contains("reshape") && e.contains("[2, 3]") && e.contains("[4, -1]"),
        "{e}"
    );
    let e = tape.narrow(c, 1, 2, 2).unwrap_err().to_string();
    assert!(e.contains("narrow") && e.contains("[2, 3]"), "{e}");
    assert!(tape.stack(&[], 0).is_err());
    assert!(tape.squeeze(c, 0).is_err());
    assert!(tape.transpose(c, 0, 2).is_err());
}

/// Shape pairs for the batched matmul: batch broadcasting, rank-1 operands, rank 5.
const MATMUL_PAIRS: &[(&[usize], &[usize])] = &[
    (&[2, 3, 4], &[2, 4, 5]),
    (&[2, 3, 4], &[4, 2]),
    (&[3, 4], &[2, 1, 4, 2]),
    (&[2, 1, 3, 4], &[3, 4, 2]),
    (&[4], &[2, 4, 3]),
    (&[2, 3, 4], &[4]),
    (&[4], &[4]),
    (&[1, 2, 1, 2, 3], &[2, 1, 2, 3, 2]),
];

#[test]
fn batched_matmul_matches_finite_differences() {
    for (k, &(sa, sb)) in MATMUL_PAIRS.iter().enumerate() {
        let inputs = [values(sa, 10 + k as u64), values(sb, 20 + k as u64)];
        let check = gradcheck::check(&inputs, 1e-3, |tape, v| {
            let y = tape.matmul(v[0], v[1])?;
            weighted_sum(tape, y, 30)
        })
        .unwrap_or_else(|e| panic!("{sa:?} @ {sb:?}: {e}"));
        assert!(check.max_error < 1e-2, "{sa:?} @ {sb:?}: {check:?}");
    }
}

/// `a @ b` by NumPy's rules with a triple loop and index arithmetic, in f64.
fn naive_matmul(a: &Tensor, b: &Tensor) -> (Vec<usize>, Vec<f64>) {
    let (mut sa, mut sb) = (a.dims().to_vec(), b.dims().to_vec());
    let (a1, b1) = (sa.len() == 1, sb.len() == 1);
    if a1 {
        sa.insert(0, 1);
    }
    if b1 {
        sb.push(1);
    }
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    let rank = sa.len().max(sb.len()) - 2;
    let pad = |s: &[usize]| {
        let mut p = vec![1; rank + 2 - s.len()];
        p.extend_from_slice(&s[..s.len() - 2]);
        p
    };
    let (ba, bb) = (pad(&sa), pad(&sb));
    let batch: Vec<usize> = ba.iter().zip(&bb).map(|(x, y)| *x.max(y)).collect();
    let count: usize = batch.iter().product();
    let offset = |idx: &[usize], own: &[usize], matrix: usize| -> usize {
        let mut off = 0;
        for (i, &d) in own.iter().enumerate() {
            off = off * d + if d == 1 { 0 } else { idx[i] };
        }
        off * matrix
    };
    let mut out = Vec::with_capacity(count * m * n);
    for flat in 0..count {
        let mut idx = vec![0; rank];
        let mut r = flat;
        for i in (0..rank).rev() {
            idx[i] = r % batch[i];
            r /= batch[i];
        }
        let (oa, ob) = (offset(&idx, &ba, m * k), offset(&idx, &bb, k * n));
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a.data()[oa + i * k + p] as f64 * b.data()[ob + p * n + j] as f64)
                    .sum();
                out.push(s);
            }
        }
    }
    let mut dims = batch;
    if !a1 {
        dims.push(m);
    }
    if !b1 {
        dims.push(n);
    }
    (dims, out)
}

#[test]
fn batched_matmul_matches_a_naive_triple_loop_on_random_shapes() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut seed = 1u64;
    let mut draw = |below: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (seed >> 33) as usize % below
    };
    for case in 0..200 {
        let (m, k, n) = (1 + draw(5), 1 + draw(5), 1 + draw(5));
        let rank = draw(4);
        let full: Vec<usize> = (0..rank).map(|_| 1 + draw(3)).collect();
        let mut part = |with: &[usize]| -> Vec<usize> {
            let keep = draw(rank + 1);
            with[rank - keep..]
                .iter()
                .map(|&d| if draw(3) == 0 { 1 } else { d })
                .collect()
        };
        let mut sa = part(&full);
        let mut sb = part(&full);
        sa.extend([m, k]);
        sb.extend([k, n]);
        if draw(6) == 0 {
            sa = vec![k];
        }
        if draw(6) == 0 {
            sb = vec![k];
        }
        let (a, b) = (values(&sa, case), values(&sb, case + 1000));
        let mut tape = Tape::new(&params, &mut ws);
        let (va, vb) = (tape.input(&a), tape.input(&b));
        let c = tape.matmul(va, vb).unwrap();
        let (dims, want) = naive_matmul(&a, &b);
        assert_eq!(tape.dims(c), &dims[..], "{sa:?} @ {sb:?}");
        for (x, y) in tape.value(c).data().iter().zip(&want) {
            assert!((*x as f64 - y).abs() < 1e-5, "{sa:?} @ {sb:?}: {x} vs {y}");
        }
    }
}

#[test]
fn matmul_errors_name_both_shapes() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let a = tape.input(&values(&[2, 3, 4], 1));
    let b = tape.input(&values(&[3, 5, 2], 2));
    let e = tape.matmul(a, b).unwrap_err().to_string();
    assert!(
        e.contains("[2, 3, 4]") && e.contains("[3, 5, 2]") && e.contains("4 and 5"),
        "{e}"
    );
    let c = tape.input(&values(&[3, 4, 2], 3));
    let e = tape.matmul(a, c).unwrap_err().to_string();
    assert!(e.contains("batch") && e.contains("[3, 4, 2]"), "{e}");
}

#[test]
fn index_select_gather_embedding_match_finite_differences() {
    for &s in SHAPES {
        let size = s[0];
        // Repeated indices: their gradients add.
        let ids: Vec<usize> = (0..4).map(|i| (i * 2) % size).collect();
        check1("index_select", s, |t, x| t.index_select(x, 0, &ids));
        let last = *s.last().unwrap();
        check1("index_select", s, |t, x| {
            t.index_select(x, -1, &[last - 1, 0, last - 1])
        });
        // gather along the last axis with an index that reads some elements twice.
        let mut ishape = s.to_vec();
        *ishape.last_mut().unwrap() = 3;
        let n: usize = ishape.iter().product();
        let index =
            Tensor::from_shape(&ishape, (0..n).map(|i| ((i * 7) % last) as f32).collect()).unwrap();
        check1("gather", s, |t, x| {
            let ix = t.input(&index);
            t.gather(x, -1, ix)
        });
    }
    check1("embedding", &[5, 3], |t, w| {
        t.embedding(w, &[4, 0, 4, 2, 1, 4], &[2, 3])
    });
}

#[test]
fn index_ops_compute_torch_values_and_refuse_bad_indices() {
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    // torch.gather(torch.tensor([[1., 2.], [3., 4.]]), 1, torch.tensor([[0, 0], [1, 0]]))
    //   = [[1., 1.], [4., 3.]]
    let x = tape.input(&Tensor::from_shape(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    let ix = tape.input(&Tensor::from_shape(&[2, 2], vec![0.0, 0.0, 1.0, 0.0]).unwrap());
    let g = tape.gather(x, 1, ix).unwrap();
    assert_eq!(tape.value(g).data(), &[1.0, 1.0, 4.0, 3.0]);
    let e = tape.embedding(x, &[1, 1, 0], &[3]).unwrap();
    assert_eq!(tape.dims(e), &[3, 2]);
    assert_eq!(tape.value(e).data(), &[3.0, 4.0, 3.0, 4.0, 1.0, 2.0]);

    let e = tape.index_select(x, 1, &[0, 2]).unwrap_err().to_string();
    assert!(
        e.contains("index 2") && e.contains("axis 1") && e.contains("size 2"),
        "{e}"
    );
    let bad = tape.input(&Tensor::from_shape(&[1, 2], vec![0.0, 5.0]).unwrap());
    let e = tape.gather(x, 0, bad).unwrap_err().to_string();
    assert!(
        e.contains("index 5") && e.contains("axis 0") && e.contains("size 2"),
        "{e}"
    );
    let frac = tape.input(&Tensor::from_shape(&[1, 1], vec![0.5]).unwrap());
    assert!(tape.gather(x, 0, frac).is_err());
    let wide = tape.input(&Tensor::from_shape(&[1, 3], vec![0.0; 3]).unwrap());
    let e = tape.gather(x, 0, wide).unwrap_err().to_string();
    assert!(e.contains("[1, 3]") && e.contains("[2, 2]"), "{e}");
    assert!(tape.embedding(x, &[0, 1], &[3]).is_err());
}
