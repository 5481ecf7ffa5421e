//! Time and GFLOP/s of each phase of the MNIST CNN of issue 12 (`conv 32 3 pad 1, relu,
//! maxpool 2, conv 64 3 pad 1, relu, maxpool 2, flatten, dense 128, relu, dense 10`) on one
//! micro-batch of 64 images, one thread: im2col, the convolution GEMMs (forward, weight
//! gradient, input gradient) batch-wide as the op runs them and per sample for comparison,
//! col2im and max pooling. Medians over repeated calls. Run:
//! `cargo bench --bench conv_phases`.

use std::hint::black_box;
use std::time::Instant;

use nabla::kernels::conv::{ConvGeometry, PoolGeometry, col2im_strided, im2col_strided};
use nabla::kernels::{Transpose, matmul};

const N: usize = 64;

/// Median seconds of `f` over `reps` calls after two warm-up calls.
fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn report(name: &str, secs: f64, flop: f64) {
    let per_image = secs / N as f64 * 1e6;
    if flop > 0.0 {
        println!(
            "{name:<44} {per_image:8.2} µs/image  {:6.1} GFLOP/s",
            flop / secs / 1e9
        );
    } else {
        println!("{name:<44} {per_image:8.2} µs/image");
    }
}

fn geometry(channels: usize, side: usize) -> ConvGeometry {
    ConvGeometry {
        channels,
        height: side,
        width: side,
        kernel: 3,
        stride: 1,
        padding: 1,
        dilation: 1,
    }
}

fn gemm_phases(tag: &str, g: &ConvGeometry, o: usize, input_grad: bool) {
    let (k, p) = (g.patch(), g.positions());
    let x: Vec<f32> = (0..N * g.input_len())
        .map(|i| (i % 13) as f32 * 0.1)
        .collect();
    let w: Vec<f32> = (0..o * k).map(|i| (i % 7) as f32 * 0.01).collect();
    let mut cols = vec![0.0f32; k * N * p];
    let mut wide = vec![0.0f32; o * N * p];
    let mut dw = vec![0.0f32; o * k];
    let mut dx = vec![0.0f32; N * g.input_len()];
    let flop = 2.0 * (o * k * p * N) as f64;
    let t = median(20, || {
        for (s, xn) in x.chunks_exact(g.input_len()).enumerate() {
            im2col_strided(xn, g, &mut cols[s * p..], N * p);
        }
    });
    report(&format!("{tag} im2col"), t, 0.0);
    let t = median(20, || {
        matmul(
            o,
            N * p,
            k,
            &w,
            Transpose::No,
            &cols,
            Transpose::No,
            &mut wide,
            false,
        );
    });
    report(&format!("{tag} forward GEMM {o}×{}×{k}", N * p), t, flop);
    let t = median(20, || {
        for s in 0..N {
            let c = &cols[..k * p];
            matmul(
                o,
                p,
                k,
                &w,
                Transpose::No,
                c,
                Transpose::No,
                &mut wide[s * o * p..],
                false,
            );
        }
    });
    report(
        &format!("{tag} forward GEMM per sample {o}×{p}×{k}"),
        t,
        flop,
    );
    let t = median(20, || {
        matmul(
            o,
            k,
            N * p,
            &wide,
            Transpose::No,
            &cols,
            Transpose::Yes,
            &mut dw,
            true,
        );
    });
    report(
        &format!("{tag} weight-gradient GEMM {o}×{k}×{}", N * p),
        t,
        flop,
    );
    if input_grad {
        let t = median(20, || {
            matmul(
                k,
                N * p,
                o,
                &w,
                Transpose::Yes,
                &wide,
                Transpose::No,
                &mut cols,
                false,
            );
        });
        report(
            &format!("{tag} input-gradient GEMM {k}×{}×{o}", N * p),
            t,
            flop,
        );
        let t = median(20, || {
            for (s, d) in dx.chunks_exact_mut(g.input_len()).enumerate() {
                col2im_strided(&cols[s * p..], N * p, g, d, false);
            }
        });
        report(&format!("{tag} col2im"), t, 0.0);
    }
    black_box((&wide, &dw, &dx));
}

fn pool_phase(tag: &str, channels: usize, side: usize) {
    let g = PoolGeometry {
        channels,
        height: side,
        width: side,
        kernel: 2,
        stride: 2,
    };
    let x: Vec<f32> = (0..N * g.input_len())
        .map(|i| ((i * 37) % 101) as f32)
        .collect();
    let (mut y, mut arg) = (vec![0.0; N * g.output_len()], vec![0.0; N * g.output_len()]);
    let rows = |y: &mut [f32], arg: &mut [f32]| {
        let chunks = y.chunks_exact_mut(g.output_len());
        let args = arg.chunks_exact_mut(g.output_len());
        for ((yy, aa), xs) in chunks.zip(args).zip(x.chunks_exact(g.input_len())) {
            g.max(xs, yy, aa);
        }
    };
    report(
        &format!("{tag} max pool (with arg-max)"),
        median(20, || rows(&mut y, &mut arg)),
        0.0,
    );
    let t = median(20, || {
        for (yy, xs) in y
            .chunks_exact_mut(g.output_len())
            .zip(x.chunks_exact(g.input_len()))
        {
            g.max_values(xs, yy);
        }
    });
    report(&format!("{tag} max pool (values only)"), t, 0.0);
    black_box((&y, &arg));
}

fn main() {
    println!("micro-batch {N} images, 1 thread; FLOP = 2·O·C·k²·P per image and phase");
    gemm_phases("conv1", &geometry(1, 28), 32, false);
    pool_phase("pool1", 32, 28);
    gemm_phases("conv2", &geometry(32, 14), 64, true);
    pool_phase("pool2", 64, 14);
    let (m, n, k) = (N, 128, 3136);
    let a: Vec<f32> = vec![0.5; m * k];
    let b: Vec<f32> = vec![0.25; n * k];
    let mut c = vec![0.0; m * n];
    let t = median(20, || {
        matmul(
            m,
            n,
            k,
            &a,
            Transpose::No,
            &b,
            Transpose::Yes,
            &mut c,
            false,
        )
    });
    report("dense 3136→128 forward GEMM", t, 2.0 * (m * n * k) as f64);
    black_box(&c);
}
