//! The image ops (convolution, pooling, batch norm over channels, channel dropout) against
//! central finite differences, on small images with several geometries.

use nabla::autograd::gradcheck::check;
use nabla::kernels::conv::{ConvGeometry, PoolGeometry};
use nabla::rng::{self, ChaCha8Rng, RngExt, Stream};
use nabla::{NablaError, Tape, Tensor, Var};

const TOL: f64 = 5e-3;
const EPS: f32 = 1e-2;

fn rng(seed: u64) -> ChaCha8Rng {
    rng::sub_stream(seed, Stream::Init, 77)
}

fn random(r: &mut ChaCha8Rng, rows: usize, cols: usize) -> Tensor {
    let data = (0..rows * cols)
        .map(|_| {
            let m = 0.1 + r.random::<f32>();
            if r.random::<bool>() { m } else { -m }
        })
        .collect();
    Tensor::from_vec(rows, cols, data).unwrap()
}

/// Distinct values 0.05 apart in a shuffled order: a max never changes under ±ε.
fn distinct(r: &mut ChaCha8Rng, rows: usize, cols: usize) -> Tensor {
    let mut v: Vec<f32> = (0..rows * cols).map(|i| i as f32 * 0.05 - 1.0).collect();
    for i in (1..v.len()).rev() {
        let j = r.random_range(0..=i);
        v.swap(i, j);
    }
    Tensor::from_vec(rows, cols, v).unwrap()
}

/// L = Σ (y ⊙ R) with random R: every output element gets its own upstream gradient.
fn weighted_sum(tape: &mut Tape, y: Var, seed: u64) -> Result<Var, NablaError> {
    let (r, c) = tape.shape(y);
    let w = tape.input(&random(&mut rng(seed + 1000), r, c));
    let p = tape.mul(y, w)?;
    Ok(tape.sum(p))
}

fn assert_ok(name: &str, res: Result<nabla::autograd::gradcheck::GradCheck, NablaError>) {
    let g = res.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(g.compared > 0);
    assert!(g.max_error < TOL, "{name}: max error {}", g.max_error);
}

fn conv(
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
) -> ConvGeometry {
    ConvGeometry {
        channels: c,
        height: h,
        width: w,
        kernel: k,
        stride,
        padding: pad,
        dilation: dil,
    }
}

#[test]
fn conv2d_input_weight_and_bias() {
    let cases = [
        (2, conv(1, 4, 4, 3, 1, 0, 1), 2),
        (3, conv(2, 5, 4, 3, 1, 1, 1), 3),
        (2, conv(3, 6, 6, 3, 2, 1, 1), 2),
        (1, conv(2, 7, 7, 2, 1, 0, 2), 4),
        (2, conv(1, 3, 3, 1, 1, 0, 1), 1),
    ];
    for (i, &(n, g, out)) in cases.iter().enumerate() {
        let x = random(&mut rng(i as u64), n, g.input_len());
        let w = random(&mut rng(i as u64 + 10), out, g.patch());
        let b = random(&mut rng(i as u64 + 20), 1, out);
        let res = check(&[x, w, b], EPS, |t, v| {
            let y = t.conv2d(v[0], v[1], v[2], g)?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok(&format!("conv2d {g:?}"), res);
    }
}

#[test]
fn conv2d_matches_a_direct_sum() {
    // One 3×3 output of a 2-channel 4×4 image, kernel 2, stride 1, padding 0, written out.
    let g = conv(2, 4, 4, 2, 1, 0, 1);
    let x = random(&mut rng(1), 1, g.input_len());
    let w = random(&mut rng(2), 3, g.patch());
    let b = random(&mut rng(3), 1, 3);
    let params = nabla::Params::new();
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let (xv, wv, bv) = (tape.input(&x), tape.input(&w), tape.input(&b));
    let y = tape.conv2d(xv, wv, bv, g).unwrap();
    let y = tape.value(y).data().to_vec();
    for o in 0..3 {
        for oy in 0..3 {
            for ox in 0..3 {
                let mut s = b.data()[o];
                for c in 0..2 {
                    for ky in 0..2 {
                        for kx in 0..2 {
                            s += w.data()[o * 8 + c * 4 + ky * 2 + kx]
                                * x.data()[c * 16 + (oy + ky) * 4 + ox + kx];
                        }
                    }
                }
                assert!((y[o * 9 + oy * 3 + ox] - s).abs() < 1e-5);
            }
        }
    }
}

fn pool(c: usize, h: usize, w: usize, k: usize, s: usize) -> PoolGeometry {
    PoolGeometry {
        channels: c,
        height: h,
        width: w,
        kernel: k,
        stride: s,
    }
}

#[test]
fn max_and_average_pooling() {
    let cases = [
        pool(1, 4, 4, 2, 2),
        pool(2, 5, 5, 2, 2),
        pool(3, 6, 4, 3, 1),
        pool(1, 2, 2, 2, 2),
    ];
    for (i, &g) in cases.iter().enumerate() {
        let x = distinct(&mut rng(i as u64), 2, g.input_len());
        let res = check(std::slice::from_ref(&x), EPS, |t, v| {
            let y = t.max_pool2d(v[0], g)?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok(&format!("max_pool2d {g:?}"), res);
        let res = check(&[x], EPS, |t, v| {
            let y = t.avg_pool2d(v[0], g)?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok(&format!("avg_pool2d {g:?}"), res);
    }
}

#[test]
fn max_pooling_routes_the_gradient_to_the_arg_max() {
    let x = Tensor::from_vec(1, 4, vec![0.1, 0.9, -0.3, 0.5]).unwrap();
    let params = nabla::Params::new();
    let mut grads = nabla::Grads::zeros_like(&params);
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let xv = tape.leaf(&x, true);
    let y = tape.max_pool2d(xv, pool(1, 2, 2, 2, 2)).unwrap();
    assert_eq!(tape.value(y).data(), &[0.9]);
    let l = tape.scale(y, 3.0);
    let l = tape.sum(l);
    tape.backward(l, &mut grads).unwrap();
    assert_eq!(tape.grad(xv).unwrap().data(), &[0.0, 3.0, 0.0, 0.0]);
}

#[test]
fn global_average_pooling() {
    for (i, &(n, c, hw)) in [(1, 1, 1), (2, 3, 4), (3, 2, 9)].iter().enumerate() {
        let x = random(&mut rng(i as u64), n, c * hw);
        let res = check(&[x], EPS, |t, v| {
            let y = t.global_avg_pool(v[0], c)?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok("global_avg_pool", res);
    }
}

#[test]
fn batch_norm_over_channels_and_its_evaluation_map() {
    for (i, &(n, c, hw)) in [(2, 1, 4), (3, 2, 3), (4, 3, 1), (1, 2, 6)]
        .iter()
        .enumerate()
    {
        let x = random(&mut rng(i as u64), n, c * hw);
        let g = random(&mut rng(i as u64 + 5), 1, c);
        let b = random(&mut rng(i as u64 + 6), 1, c);
        let res = check(&[x.clone(), g.clone(), b.clone()], EPS, |t, v| {
            let y = t.batch_norm2d(v[0], v[1], v[2], 1e-5)?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok("batch_norm2d", res);
        let res = check(&[x, g, b], EPS, |t, v| {
            let y = t.affine_channels(v[0], v[1], v[2])?;
            weighted_sum(t, y, i as u64)
        });
        assert_ok("affine_channels", res);
    }
}

#[test]
fn batch_norm2d_statistics_are_per_channel() {
    // Channel 0 holds 1,2,3,4 (two samples × 2 pixels), channel 1 holds 10,10,30,30.
    let x = Tensor::from_vec(2, 4, vec![1.0, 2.0, 10.0, 10.0, 3.0, 4.0, 30.0, 30.0]).unwrap();
    let params = nabla::Params::new();
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let xv = tape.input(&x);
    let g = tape.input(&Tensor::from_vec(1, 2, vec![1.0, 1.0]).unwrap());
    let b = tape.input(&Tensor::from_vec(1, 2, vec![0.0, 0.0]).unwrap());
    let y = tape.batch_norm2d(xv, g, b, 0.0).unwrap();
    let (mean, var) = tape.batch_statistics(y).unwrap();
    assert_eq!(mean, &[2.5, 20.0]);
    assert_eq!(var, &[1.25, 100.0]);
}

#[test]
fn channel_dropout_drops_whole_planes() {
    let x = random(&mut rng(3), 4, 3 * 5);
    let res = check(std::slice::from_ref(&x), EPS, |t, v| {
        let mut r = rng(42);
        let y = t.dropout_channels(v[0], 0.5, 3, &mut r)?;
        weighted_sum(t, y, 3)
    });
    assert_ok("dropout_channels", res);
    let params = nabla::Params::new();
    let mut ws = nabla::Workspace::new();
    let mut tape = Tape::new(&params, &mut ws);
    let xv = tape.input(&x);
    let y = tape.dropout_channels(xv, 0.5, 3, &mut rng(42)).unwrap();
    let (yv, xd) = (tape.value(y).data(), x.data());
    let mut zeroed = 0;
    for (yp, xp) in yv.chunks(5).zip(xd.chunks(5)) {
        let all_zero = yp.iter().all(|&v| v == 0.0);
        let all_kept = yp.iter().zip(xp).all(|(a, b)| *a == 2.0 * b);
        assert!(all_zero || all_kept);
        zeroed += all_zero as usize;
    }
    assert!(zeroed > 0 && zeroed < 12);
}
