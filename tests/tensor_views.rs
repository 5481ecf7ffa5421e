//! Views, broadcasting binary ops and the batched matmul against references: property tests
//! (shapes drawn at random, rank 1–5, sizes 1–4) comparing every element with a
//! straightforward index-arithmetic implementation written here, and NumPy's answers for a
//! few dozen cases committed in tests/reference/views.json (made by make_views.py beside it).

mod common;
use common::values;
use nabla::autograd::ops::broadcast::BinaryKind;
use nabla::tensor::TensorView;
use nabla::{Params, Tape, Tensor, Var, Workspace};
use proptest::prelude::*;

/// Every index of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut flat| {
            let mut idx = vec![0; shape.len()];
            for i in (0..shape.len()).rev() {
                idx[i] = flat % shape[i];
                flat /= shape[i];
            }
            idx
        })
        .collect()
}

/// The row-major position of `idx` in `shape`.
fn flat(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, d)| acc * d + i)
}

/// One view step, as the reference understands it.
#[derive(Clone, Debug)]
enum Step {
    Permute(Vec<usize>),
    Transpose(usize, usize),
    Narrow(usize, usize, usize),
    Unsqueeze(usize),
    Squeeze(usize),
    BroadcastTo(Vec<usize>),
    Reshape(Vec<usize>),
}

impl Step {
    /// The shape after the step.
    fn shape(&self, s: &[usize]) -> Vec<usize> {
        match self {
            Step::Permute(o) => o.iter().map(|&a| s[a]).collect(),
            &Step::Transpose(a, b) => {
                let mut t = s.to_vec();
                t.swap(a, b);
                t
            }
            &Step::Narrow(ax, _, len) => {
                let mut t = s.to_vec();
                t[ax] = len;
                t
            }
            &Step::Unsqueeze(ax) => {
                let mut t = s.to_vec();
                t.insert(ax, 1);
                t
            }
            &Step::Squeeze(ax) => {
                let mut t = s.to_vec();
                t.remove(ax);
                t
            }
            Step::BroadcastTo(to) | Step::Reshape(to) => to.clone(),
        }
    }

    /// The index before the step (shape `s`) that output index `idx` reads.
    fn back(&self, s: &[usize], idx: &[usize]) -> Vec<usize> {
        match self {
            Step::Permute(o) => {
                let mut src = vec![0; s.len()];
                for (i, &a) in o.iter().enumerate() {
                    src[a] = idx[i];
                }
                src
            }
            &Step::Transpose(a, b) => {
                let mut src = idx.to_vec();
                src.swap(a, b);
                src
            }
            &Step::Narrow(ax, start, _) => {
                let mut src = idx.to_vec();
                src[ax] += start;
                src
            }
            &Step::Unsqueeze(ax) => {
                let mut src = idx.to_vec();
                src.remove(ax);
                src
            }
            &Step::Squeeze(ax) => {
                let mut src = idx.to_vec();
                src.insert(ax, 0);
                src
            }
            Step::BroadcastTo(to) => {
                let lead = to.len() - s.len();
                (0..s.len())
                    .map(|j| if s[j] == 1 { 0 } else { idx[lead + j] })
                    .collect()
            }
            Step::Reshape(to) => {
                let mut f = flat(to, idx);
                let mut src = vec![0; s.len()];
                for i in (0..s.len()).rev() {
                    src[i] = f % s[i];
                    f /= s[i];
                }
                src
            }
        }
    }

    /// A step that fits shape `s`, drawn from `pick` (a source of small numbers).
    fn draw(s: &[usize], pick: &mut impl FnMut(usize) -> usize) -> Step {
        let r = s.len();
        loop {
            let step = match pick(7) {
                0 => {
                    let mut o: Vec<usize> = (0..r).collect();
                    for i in (1..r).rev() {
                        o.swap(i, pick(i + 1));
                    }
                    Step::Permute(o)
                }
                1 => Step::Transpose(pick(r), pick(r)),
                2 => {
                    let ax = pick(r);
                    let start = pick(s[ax]);
                    Step::Narrow(ax, start, 1 + pick(s[ax] - start))
                }
                3 if r < 5 => Step::Unsqueeze(pick(r + 1)),
                4 => match (0..r).find(|&a| s[a] == 1) {
                    Some(ax) if r > 1 => Step::Squeeze(ax),
                    _ => continue,
                },
                5 if r < 5 => {
                    let mut to: Vec<usize> = (0..pick(6 - r)).map(|_| 1 + pick(3)).collect();
                    to.extend(s.iter().map(|&d| if d == 1 { 1 + pick(3) } else { d }));
                    Step::BroadcastTo(to)
                }
                6 => Step::Reshape(vec![s.iter().product()]),
                _ => continue,
            };
            return step;
        }
    }

    /// The same step on a view.
    fn on_view<'a>(&self, v: TensorView<'a>) -> TensorView<'a> {
        match self {
            Step::Permute(o) => v.permute(o),
            &Step::Transpose(a, b) => v.transpose(a as isize, b as isize),
            &Step::Narrow(ax, start, len) => v.narrow(ax as isize, start, len),
            &Step::Unsqueeze(ax) => v.unsqueeze(ax as isize),
            &Step::Squeeze(ax) => v.squeeze(ax as isize),
            Step::BroadcastTo(to) => v.broadcast_to(to),
            // A view reshapes only when contiguous (it says so otherwise).
            Step::Reshape(to) if v.is_contiguous() => v.reshape(to),
            Step::Reshape(_) => unreachable!("reshape steps are taken on copies"),
        }
        .unwrap()
    }

    /// The same step on the tape, with negative axes where they can be.
    fn on_tape(&self, tape: &mut Tape, x: Var, rank: usize) -> Var {
        let neg = |a: usize| a as isize - rank as isize;
        match self {
            Step::Permute(o) => {
                let o: Vec<isize> = o.iter().map(|&a| neg(a)).collect();
                tape.permute(x, &o)
            }
            &Step::Transpose(a, b) => tape.transpose(x, neg(a), b as isize),
            &Step::Narrow(ax, start, len) => tape.narrow(x, neg(ax), start, len),
            &Step::Unsqueeze(ax) => tape.unsqueeze(x, ax as isize - rank as isize - 1),
            &Step::Squeeze(ax) => tape.squeeze(x, neg(ax)),
            Step::BroadcastTo(to) => tape.broadcast_to(x, to),
            Step::Reshape(to) => tape.reshape(x, to),
        }
        .unwrap()
    }
}

/// The elements a chain of steps selects from `x`, by index arithmetic alone.
fn reference(x: &Tensor, steps: &[Step]) -> (Vec<usize>, Vec<f32>) {
    let mut shapes = vec![x.dims().to_vec()];
    for st in steps {
        let next = st.shape(shapes.last().unwrap());
        shapes.push(next);
    }
    let out = shapes.last().unwrap().clone();
    let data = indices(&out)
        .into_iter()
        .map(|mut idx| {
            for (st, s) in steps.iter().zip(&shapes).rev() {
                idx = st.back(s, &idx);
            }
            x.data()[flat(x.dims(), &idx)]
        })
        .collect();
    (out, data)
}

/// `steps` taken on views of `x` (a reshape of a non-contiguous view copies first, as a user
/// must): the shape, the elements read one by one with `get`, and `contiguous()`.
fn through_views(x: &Tensor, steps: &[Step]) -> (Vec<usize>, Vec<f32>, Tensor) {
    let mut v = x.view();
    for (i, st) in steps.iter().enumerate() {
        if matches!(st, Step::Reshape(_)) && !v.is_contiguous() {
            return through_views(&v.contiguous(), &steps[i..]);
        }
        v = st.on_view(v);
    }
    let dims = v.dims().to_vec();
    let read = indices(&dims)
        .iter()
        .map(|idx| v.get(idx).unwrap())
        .collect();
    (dims, read, v.contiguous())
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=4, 1..=5)
}

/// A source of small numbers from a seed.
fn picker(seed: u64) -> impl FnMut(usize) -> usize {
    let mut s = seed.wrapping_add(0x9E3779B97F4A7C15);
    move |below| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % below.max(1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chains_of_views_match_index_arithmetic(shape in shape_strategy(), seed in any::<u64>(), n in 1usize..5) {
        let x = values(&shape, seed);
        let mut pick = picker(seed);
        let mut steps = vec![];
        let mut s = shape.clone();
        for _ in 0..n {
            let st = Step::draw(&s, &mut pick);
            s = st.shape(&s);
            steps.push(st);
        }
        let (dims, want) = reference(&x, &steps);

        // Views, copied to a new tensor whenever a reshape needs contiguous elements.
        let (got_dims, read, got) = through_views(&x, &steps);
        prop_assert_eq!(&got_dims, &dims);
        prop_assert_eq!(&read, &want);
        prop_assert_eq!(got.data(), &want[..]);

        // The same chain on the tape.
        let params = Params::new();
        let mut ws = Workspace::new();
        let mut tape = Tape::new(&params, &mut ws);
        let mut y = tape.input(&x);
        for st in &steps {
            let rank = tape.dims(y).len();
            y = st.on_tape(&mut tape, y, rank);
        }
        prop_assert_eq!(tape.dims(y), &dims[..]);
        prop_assert_eq!(tape.value(y).data(), &want[..]);
    }

    #[test]
    fn broadcasting_binary_ops_match_index_arithmetic(out in shape_strategy(), seed in any::<u64>()) {
        let mut pick = picker(seed);
        let mut operand = |out: &[usize]| -> Vec<usize> {
            let drop = pick(out.len());
            out[drop..].iter().map(|&d| if pick(3) == 0 { 1 } else { d }).collect()
        };
        let (sa, sb) = (operand(&out), operand(&out));
        let (a, b) = (values(&sa, seed), values(&sb, seed ^ 1));
        // The broadcast shape: the output drawn, unless both operands left an axis at 1.
        let rank = sa.len().max(sb.len());
        let size = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
        let dims: Vec<usize> = (0..rank).map(|i| size(&sa, i).max(size(&sb, i))).collect();
        let read = |t: &Tensor, s: &[usize], idx: &[usize]| {
            let lead = rank - s.len();
            let own: Vec<usize> = (0..s.len()).map(|j| if s[j] == 1 { 0 } else { idx[lead + j] }).collect();
            t.data()[flat(s, &own)]
        };
        let params = Params::new();
        let mut ws = Workspace::new();
        let mut tape = Tape::new(&params, &mut ws);
        let (va, vb) = (tape.input(&a), tape.input(&b));
        for kind in [BinaryKind::Add, BinaryKind::Sub, BinaryKind::Mul, BinaryKind::Maximum, BinaryKind::Minimum] {
            let f = |x: f32, y: f32| match kind {
                BinaryKind::Add => x + y,
                BinaryKind::Sub => x - y,
                BinaryKind::Mul => x * y,
                BinaryKind::Maximum => x.max(y),
                _ => x.min(y),
            };
            let c = tape.broadcast(va, vb, kind).unwrap();
            prop_assert_eq!(tape.dims(c), &dims[..]);
            for (k, idx) in indices(&dims).iter().enumerate() {
                let want = f(read(&a, &sa, idx), read(&b, &sb, idx));
                prop_assert_eq!(tape.value(c).data()[k], want, "{:?} {:?} {:?} at {:?}", kind, sa, sb, idx);
            }
        }
    }

    #[test]
    fn batched_matmul_matches_index_arithmetic(
        batch in prop::collection::vec(1usize..=3, 0..=3),
        mkn in (1usize..=4, 1usize..=4, 1usize..=4),
        seed in any::<u64>(),
    ) {
        let (m, k, n) = mkn;
        let mut pick = picker(seed);
        let mut operand = |tail: [usize; 2]| -> Vec<usize> {
            let drop = pick(batch.len() + 1);
            let mut s: Vec<usize> = batch[drop..].iter().map(|&d| if pick(3) == 0 { 1 } else { d }).collect();
            s.extend(tail);
            s
        };
        let (sa, sb) = (operand([m, k]), operand([k, n]));
        let (a, b) = (values(&sa, seed), values(&sb, seed ^ 7));
        let r = sa.len().max(sb.len()) - 2;
        let size = |s: &[usize], i: usize| if i + s.len() - 2 >= r { s[i + s.len() - 2 - r] } else { 1 };
        let bdims: Vec<usize> = (0..r).map(|i| size(&sa, i).max(size(&sb, i))).collect();
        let params = Params::new();
        let mut ws = Workspace::new();
        let mut tape = Tape::new(&params, &mut ws);
        let (va, vb) = (tape.input(&a), tape.input(&b));
        let c = tape.matmul(va, vb).unwrap();
        let mut dims = bdims.clone();
        dims.extend([m, n]);
        prop_assert_eq!(tape.dims(c), &dims[..]);
        for (pos, idx) in indices(&dims).iter().enumerate() {
            let at = |s: &[usize], row: usize, col: usize| {
                let lead = r + 2 - s.len();
                let mut own: Vec<usize> = (0..s.len() - 2).map(|j| if s[j] == 1 { 0 } else { idx[lead + j] }).collect();
                own.extend([row, col]);
                flat(s, &own)
            };
            let (i, j) = (idx[r], idx[r + 1]);
            let want: f64 = (0..k).map(|p| a.data()[at(&sa, i, p)] as f64 * b.data()[at(&sb, p, j)] as f64).sum();
            let got = tape.value(c).data()[pos] as f64;
            prop_assert!((got - want).abs() < 1e-5, "{:?} @ {:?} at {:?}: {} vs {}", sa, sb, idx, got, want);
        }
    }
}

/// A NumPy case: the op, its arguments, inputs and NumPy's output.
fn run_case(case: &serde_json::Value) -> Result<Tensor, String> {
    let tensor = |v: &serde_json::Value| -> Tensor {
        let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
        let data: Vec<f32> = serde_json::from_value(v["data"].clone()).unwrap();
        Tensor::from_shape(&shape, data).unwrap()
    };
    let inputs: Vec<Tensor> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    let args = &case["args"];
    let axis = |k: &str| args[k].as_i64().unwrap() as isize;
    let sizes = |k: &str| -> Vec<usize> {
        let v: Vec<i64> = serde_json::from_value(args[k].clone()).unwrap();
        v.iter()
            .map(|&s| if s < 0 { usize::MAX } else { s as usize })
            .collect()
    };
    let params = Params::new();
    let mut ws = Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let vars: Vec<Var> = inputs.iter().map(|t| tape.input(t)).collect();
    let x = vars[0];
    let op = case["op"].as_str().unwrap();
    let y = match op {
        "permute" => {
            let o: Vec<isize> = serde_json::from_value(args["order"].clone()).unwrap();
            // The view too, without copying.
            let v = inputs[0].view();
            let o2: Vec<usize> = o.iter().map(|&a| a as usize).collect();
            let direct = v.permute(&o2).unwrap().contiguous();
            let t = tape.permute(x, &o).unwrap();
            if tape.value(t) != &direct {
                return Err("the view and the tape disagree".into());
            }
            t
        }
        "transpose" => tape.transpose(x, axis("a"), axis("b")).unwrap(),
        "narrow" => {
            let (start, len) = (
                args["start"].as_u64().unwrap(),
                args["len"].as_u64().unwrap(),
            );
            tape.narrow(x, axis("axis"), start as usize, len as usize)
                .unwrap()
        }
        "unsqueeze" => tape.unsqueeze(x, axis("axis")).unwrap(),
        "squeeze" => tape.squeeze(x, axis("axis")).unwrap(),
        "broadcast_to" => tape.broadcast_to(x, &sizes("shape")).unwrap(),
        "reshape" => tape.reshape(x, &sizes("shape")).unwrap(),
        "contiguous_transpose" => {
            let r = inputs[0].rank();
            let order: Vec<usize> = (0..r).rev().collect();
            let t = inputs[0].view().permute(&order).unwrap().contiguous();
            tape.input(&t)
        }
        "matmul" => tape.matmul(x, vars[1]).unwrap(),
        _ => {
            let kind = match op {
                "add" => BinaryKind::Add,
                "sub" => BinaryKind::Sub,
                "mul" => BinaryKind::Mul,
                "div" => BinaryKind::Div,
                "maximum" => BinaryKind::Maximum,
                "minimum" => BinaryKind::Minimum,
                other => return Err(format!("unknown op {other}")),
            };
            tape.broadcast(x, vars[1], kind).unwrap()
        }
    };
    Ok(tape.value(y).clone())
}

#[test]
fn views_broadcasting_and_matmul_match_numpy() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/views.json"),
    )
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 36, "{} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        let got = run_case(case).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let shape: Vec<usize> = serde_json::from_value(case["output"]["shape"].clone()).unwrap();
        let want: Vec<f64> = serde_json::from_value(case["output"]["data"].clone()).unwrap();
        assert_eq!(got.dims(), &shape[..], "case {i} ({})", case["op"]);
        for (g, w) in got.data().iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() < 1e-6,
                "case {i} ({}): {g} vs {w}",
                case["op"]
            );
        }
    }
}
