//! f32 GEMM benchmark: gemm 0.19 vs matrixmultiply 0.3 (threading) vs faer 0.24.
//!
//! Usage: gemmbench <threads:1|2> [seconds_per_case_per_crate] [hash_out_file]
//!
//! One process runs one thread count (matrixmultiply reads MATMUL_NUM_THREADS once,
//! lazily, at its first call, so the thread count cannot change inside a process).
//! Inside the process the three crates are timed round-robin (rotating order every
//! round) so machine drift hits all of them equally.
//!
//! All matrices are row-major f32. Every case is C[m x n] (+)= A[m x k] * B[k x n] with
//!   NN : A stored m x k, B stored k x n
//!   TN : A is the transpose of a stored k x m matrix (weight gradient X^T * G)
//!   NT : B is the transpose of a stored n x k matrix (input gradient G * W^T)
//! and `acc` meaning C += A*B (gradient accumulation), else C = A*B.

use std::hint::black_box;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Op {
    NN,
    TN,
    NT,
    TT,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Crate {
    Gemm,
    MatMul,
    Faer,
}
const CRATES: [Crate; 3] = [Crate::Gemm, Crate::MatMul, Crate::Faer];
fn crate_name(c: Crate) -> &'static str {
    match c {
        Crate::Gemm => "gemm",
        Crate::MatMul => "matrixmultiply",
        Crate::Faer => "faer",
    }
}

/// Strides (row stride, col stride) of the *logical* A (m x k) and B (k x n)
/// given how they are stored row-major.
fn strides(op: Op, m: usize, n: usize, k: usize) -> ((isize, isize), (isize, isize)) {
    let (m, n, k) = (m as isize, n as isize, k as isize);
    let a = match op {
        Op::NN | Op::NT => (k, 1), // stored m x k
        Op::TN | Op::TT => (1, m), // stored k x m, A(i,p) = s[p*m + i]
    };
    let b = match op {
        Op::NN | Op::TN => (n, 1), // stored k x n
        Op::NT | Op::TT => (1, k), // stored n x k, B(p,j) = s[j*k + p]
    };
    let _ = n;
    (a, b)
}

/// Thread setting passed to each crate.
#[derive(Clone, Copy)]
struct Threads(usize);

// ---------------------------------------------------------------------------
// The three calls. `a`/`b` are the *stored* row-major buffers; C is row-major m x n.
// ---------------------------------------------------------------------------

fn run_gemm(
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    acc: bool,
    t: Threads,
) {
    let ((a_rs, a_cs), (b_rs, b_cs)) = strides(op, m, n, k);
    let par = if t.0 <= 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(t.0)
    };
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    unsafe {
        // gemm::gemm(m, n, k, dst, dst_cs, dst_rs, read_dst, lhs, lhs_cs, lhs_rs,
        //            rhs, rhs_cs, rhs_rs, alpha, beta, conj_dst, conj_lhs, conj_rhs, par)
        // computes dst := alpha*dst + beta*lhs*rhs ; with read_dst=false alpha is ignored
        // (dst is not read, dst := beta*lhs*rhs). NOTE: *_cs (column stride) comes BEFORE
        // *_rs (row stride).
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn run_mm(op: Op, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    let ((a_rs, a_cs), (b_rs, b_cs)) = strides(op, m, n, k);
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    unsafe {
        // sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        // C := alpha*A*B + beta*C ; beta == 0 => C is not read.
        // Threads: MATMUL_NUM_THREADS (read once, at first call).
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
            if acc { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn run_faer(
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    acc: bool,
    t: Threads,
) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    let par = if t.0 <= 1 { Par::Seq } else { Par::rayon(t.0) };
    let beta = if acc { Accum::Add } else { Accum::Replace };
    let dst = MatMut::from_row_major_slice_mut(&mut c[..m * n], m, n);
    let lhs = match op {
        Op::NN | Op::NT => MatRef::from_row_major_slice(&a[..m * k], m, k),
        Op::TN | Op::TT => MatRef::from_row_major_slice(&a[..m * k], k, m).transpose(),
    };
    let rhs = match op {
        Op::NN | Op::TN => MatRef::from_row_major_slice(&b[..k * n], k, n),
        Op::NT | Op::TT => MatRef::from_row_major_slice(&b[..k * n], n, k).transpose(),
    };
    matmul(dst, beta, lhs, rhs, 1.0f32, par);
}

/// Runs one call of crate `cr`. For 2 threads the call happens inside `pool.install`
/// (gemm's Parallelism::Rayon and faer's Par::Rayon both use the *current* rayon pool).
fn run(
    cr: Crate,
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    acc: bool,
    t: Threads,
    pool: &rayon::ThreadPool,
) {
    match cr {
        Crate::MatMul => run_mm(op, m, n, k, a, b, c, acc),
        Crate::Gemm => {
            if t.0 > 1 && rayon::current_thread_index().is_none() {
                pool.install(|| run_gemm(op, m, n, k, a, b, c, acc, t))
            } else {
                run_gemm(op, m, n, k, a, b, c, acc, t)
            }
        }
        Crate::Faer => {
            if t.0 > 1 && rayon::current_thread_index().is_none() {
                pool.install(|| run_faer(op, m, n, k, a, b, c, acc, t))
            } else {
                run_faer(op, m, n, k, a, b, c, acc, t)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// f64 naive reference; returns (C_ref, bound) where bound(i,j)=sum_p |A||B| (+|C0|).
fn naive(
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c0: Option<&[f32]>,
) -> (Vec<f64>, Vec<f64>) {
    let ((a_rs, a_cs), (b_rs, b_cs)) = strides(op, m, n, k);
    let mut r = vec![0f64; m * n];
    let mut bd = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            let mut sb = 0f64;
            for p in 0..k {
                let x = a[(i as isize * a_rs + p as isize * a_cs) as usize] as f64;
                let y = b[(p as isize * b_rs + j as isize * b_cs) as usize] as f64;
                s += x * y;
                sb += (x * y).abs();
            }
            if let Some(c0) = c0 {
                s += c0[i * n + j] as f64;
                sb += (c0[i * n + j] as f64).abs();
            }
            r[i * n + j] = s;
            bd[i * n + j] = sb;
        }
    }
    (r, bd)
}

/// max |c - ref| / max(bound, 1)
fn max_err(c: &[f32], r: &[f64], bd: &[f64]) -> f64 {
    c.iter()
        .zip(r)
        .zip(bd)
        .map(|((&c, &r), &b)| {
            let e = (c as f64 - r).abs() / b.max(1.0);
            if e.is_nan() { f64::INFINITY } else { e }
        })
        .fold(0.0, f64::max)
}

fn fnv(c: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in c {
        for byte in x.to_bits().to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

// ---------------------------------------------------------------------------
// verification on a small odd shape
// ---------------------------------------------------------------------------

fn verify(t: Threads, pool: &rayon::ThreadPool) -> bool {
    let (m, n, k) = (7, 5, 13);
    let mut rng = Rng(12345);
    let a = rng.vec(m * k);
    let b = rng.vec(k * n);
    let c0 = rng.vec(m * n);
    let mut ok = true;
    for op in [Op::NN, Op::TN, Op::NT, Op::TT] {
        for acc in [false, true] {
            let (r, bd) = naive(op, m, n, k, &a, &b, if acc { Some(&c0) } else { None });
            for cr in CRATES {
                // replace mode: C pre-filled with NaN proves C is not read.
                let mut c = if acc {
                    c0.clone()
                } else {
                    vec![f32::NAN; m * n]
                };
                run(cr, op, m, n, k, &a, &b, &mut c, acc, t, pool);
                let e = max_err(&c, &r, &bd);
                let pass = e < 1e-6;
                ok &= pass;
                println!(
                    "verify 7x13*13x5 op={:?} acc={} crate={:<14} max_rel_err={:.2e} {}",
                    op,
                    acc,
                    crate_name(cr),
                    e,
                    if pass { "OK" } else { "FAIL" }
                );
            }
        }
    }
    ok
}

// ---------------------------------------------------------------------------
// benchmark cases
// ---------------------------------------------------------------------------

struct Case {
    name: &'static str,
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    acc: bool,
}

/// The shapes timed: name, op, m, k, n, and whether C is accumulated into.
const SHAPES: [(&str, Op, usize, usize, usize, bool); 26] = [
    // forward, batch 128
    ("fwd1 128x784*784x256", Op::NN, 128, 784, 256, false),
    ("fwd2 128x256*256x128", Op::NN, 128, 256, 128, false),
    ("fwd3 128x128*128x10", Op::NN, 128, 128, 10, false),
    // weight gradients X^T G (A stored k x m)
    ("wgrad1 784x128*128x256 (At)", Op::TN, 784, 128, 256, false),
    ("wgrad2 256x128*128x128 (At)", Op::TN, 256, 128, 128, false),
    ("wgrad3 128x128*128x10 (At)", Op::TN, 128, 128, 10, false),
    (
        "wgrad1 784x128*128x256 (At) +=",
        Op::TN,
        784,
        128,
        256,
        true,
    ),
    (
        "wgrad2 256x128*128x128 (At) +=",
        Op::TN,
        256,
        128,
        128,
        true,
    ),
    ("wgrad3 128x128*128x10 (At) +=", Op::TN, 128, 128, 10, true),
    // input gradients G W^T (B stored n x k)
    ("igrad1 128x256*256x784 (Bt)", Op::NT, 128, 256, 784, false),
    ("igrad2 128x128*128x256 (Bt)", Op::NT, 128, 128, 256, false),
    // GEMM-bound 784-1024-1024-10, batch 128
    ("big fwd1 128x784*784x1024", Op::NN, 128, 784, 1024, false),
    (
        "big fwd2 128x1024*1024x1024",
        Op::NN,
        128,
        1024,
        1024,
        false,
    ),
    (
        "big wgrad1 784x128*128x1024 (At)",
        Op::TN,
        784,
        128,
        1024,
        false,
    ),
    (
        "big wgrad2 1024x128*128x1024 (At)",
        Op::TN,
        1024,
        128,
        1024,
        false,
    ),
    (
        "big wgrad1 784x128*128x1024 (At) +=",
        Op::TN,
        784,
        128,
        1024,
        true,
    ),
    (
        "big wgrad2 1024x128*128x1024 (At) +=",
        Op::TN,
        1024,
        128,
        1024,
        true,
    ),
    (
        "big igrad 128x1024*1024x1024 (Bt)",
        Op::NT,
        128,
        1024,
        1024,
        false,
    ),
    // micro-batch 64
    ("mb64 fwd1 64x784*784x256", Op::NN, 64, 784, 256, false),
    ("mb64 fwd2 64x256*256x128", Op::NN, 64, 256, 128, false),
    (
        "mb64 wgrad1 784x64*64x256 (At)",
        Op::TN,
        784,
        64,
        256,
        false,
    ),
    (
        "mb64 wgrad2 256x64*64x128 (At)",
        Op::TN,
        256,
        64,
        128,
        false,
    ),
    ("mb64 wgrad3 128x64*64x10 (At)", Op::TN, 128, 64, 10, false),
    (
        "mb64 wgrad1 784x64*64x256 (At) +=",
        Op::TN,
        784,
        64,
        256,
        true,
    ),
    (
        "mb64 wgrad2 256x64*64x128 (At) +=",
        Op::TN,
        256,
        64,
        128,
        true,
    ),
    (
        "mb64 wgrad3 128x64*64x10 (At) +=",
        Op::TN,
        128,
        64,
        10,
        true,
    ),
];

fn cases() -> Vec<Case> {
    let case = |&(name, op, m, k, n, acc): &(&'static str, Op, usize, usize, usize, bool)| Case {
        name,
        op,
        m,
        n,
        k,
        acc,
    };
    SHAPES.iter().map(case).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let secs: f64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(0.4);
    let hash_out = args.get(3).cloned();
    // matrixmultiply reads this lazily at its first sgemm call; set it before any call.
    unsafe { std::env::set_var("MATMUL_NUM_THREADS", threads.to_string()) };
    let t = Threads(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .unwrap();

    println!("# threads={threads} secs_per_case_per_crate={secs}");
    // OUTER=1: run the whole benchmark on a worker of the 2-thread pool, so gemm/faer calls
    // do not pay the cross-thread pool.install() hand-off per call (as inside a rayon-based trainer).
    if threads > 1 && std::env::var("OUTER").is_ok_and(|v| v == "1") {
        println!("# OUTER=1: benchmark body runs inside pool.install");
        pool.install(|| body(t, &pool, secs, hash_out));
    } else {
        body(t, &pool, secs, hash_out);
    }
}

fn body(t: Threads, pool: &rayon::ThreadPool, secs: f64, hash_out: Option<String>) {
    if !verify(t, pool) {
        eprintln!("VERIFICATION FAILED");
        std::process::exit(1);
    }
    let mut hash_lines = Vec::new();
    let mut rng = Rng(777);
    println!(
        "{:<40} {:>3} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | err(gemm,mm,faer)",
        "case", "thr", "gemm", "mm", "faer", "gemm_p10", "mm_p10", "faer_p10"
    );
    // optional filters: ONLY=gemm|matrixmultiply|faer times just that crate (isolation check),
    // CASES=substring restricts the shapes.
    let only = std::env::var("ONLY").ok();
    let case_filter = std::env::var("CASES").ok();
    for cs in cases() {
        if case_filter
            .as_ref()
            .is_some_and(|f| !cs.name.contains(f.as_str()))
        {
            continue;
        }
        let a = rng.vec(cs.m * cs.k);
        let b = rng.vec(cs.k * cs.n);
        let c0 = rng.vec(cs.m * cs.n);
        let data = Operands {
            a: &a,
            b: &b,
            c0: &c0,
        };
        let errs = check_case(&cs, data, t, pool, &mut hash_lines);
        let (med, p10) = time_case(&cs, data, (t, pool), secs, only.as_deref());
        print_row(&cs, t.0, med, p10, errs);
    }
    if let Some(p) = hash_out {
        std::fs::write(&p, hash_lines.join("\n") + "\n").unwrap();
        println!("# output hashes written to {p}");
    }
}

/// One case's inputs: A, B and the C that accumulating calls start from.
#[derive(Clone, Copy)]
struct Operands<'a> {
    a: &'a [f32],
    b: &'a [f32],
    c0: &'a [f32],
}

impl Operands<'_> {
    /// A fresh C: a copy of `c0` when accumulating, NaN otherwise (every value must be written).
    fn fresh_c(&self, acc: bool) -> Vec<f32> {
        if acc {
            self.c0.to_vec()
        } else {
            vec![f32::NAN; self.c0.len()]
        }
    }
}

/// Correctness against the f64 reference and a determinism hash: one fresh call per crate and
/// a second to check run-to-run identity. Returns each crate's error.
fn check_case(
    cs: &Case,
    data: Operands,
    t: Threads,
    pool: &rayon::ThreadPool,
    hash_lines: &mut Vec<String>,
) -> [f64; 3] {
    let (m, n, k, op, acc) = (cs.m, cs.n, cs.k, cs.op, cs.acc);
    let (r, bd) = naive(op, m, n, k, data.a, data.b, acc.then_some(data.c0));
    let mut errs = [0f64; 3];
    for (ci, &cr) in CRATES.iter().enumerate() {
        let mut c = data.fresh_c(acc);
        run(cr, op, m, n, k, data.a, data.b, &mut c, acc, t, pool);
        errs[ci] = max_err(&c, &r, &bd);
        assert!(
            errs[ci] < 1e-5,
            "{} wrong on {}: {}",
            crate_name(cr),
            cs.name,
            errs[ci]
        );
        let mut c2 = data.fresh_c(acc);
        run(cr, op, m, n, k, data.a, data.b, &mut c2, acc, t, pool);
        let same = c.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits());
        hash_lines.push(format!(
            "{}\t{}\t{:016x}\trepeat_identical={}",
            cs.name,
            crate_name(cr),
            fnv(&c),
            same
        ));
    }
    errs
}

/// Times the three crates round-robin; returns each crate's median and 10th-percentile
/// GFLOP/s (NaN for a crate left out by `only`).
fn time_case(
    cs: &Case,
    data: Operands,
    (t, pool): (Threads, &rayon::ThreadPool),
    secs: f64,
    only: Option<&str>,
) -> ([f64; 3], [f64; 3]) {
    let (m, n, k, op, acc) = (cs.m, cs.n, cs.k, cs.op, cs.acc);
    let call = |cr: Crate, c: &mut Vec<f32>| run(cr, op, m, n, k, data.a, data.b, c, acc, t, pool);
    let skipped = |cr: Crate| only.is_some_and(|o| o != crate_name(cr));
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let mut cbuf: Vec<Vec<f32>> = (0..3).map(|_| data.c0.to_vec()).collect();
    // warmup + calibrate inner reps so one sample takes >= ~2 ms
    let mut inner = [1usize; 3];
    for (ci, &cr) in CRATES.iter().enumerate().filter(|&(_, &cr)| !skipped(cr)) {
        for _ in 0..3 {
            call(cr, &mut cbuf[ci]);
        }
        let t0 = Instant::now();
        let mut cnt = 0;
        while t0.elapsed().as_secs_f64() < 0.02 {
            call(cr, &mut cbuf[ci]);
            cnt += 1;
        }
        let per = t0.elapsed().as_secs_f64() / cnt as f64;
        inner[ci] = ((0.002 / per).ceil() as usize).max(1);
    }
    let rounds = ((secs / 0.002) as usize).clamp(15, 400);
    let mut samples: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for j in 0..3 {
            let ci = (round + j) % 3;
            let cr = CRATES[ci];
            if skipped(cr) {
                samples[ci].push(f64::NAN);
                continue;
            }
            let t0 = Instant::now();
            for _ in 0..inner[ci] {
                call(cr, &mut cbuf[ci]);
            }
            let dt = t0.elapsed().as_secs_f64() / inner[ci] as f64;
            samples[ci].push(flops / dt / 1e9);
            black_box(&cbuf[ci]);
        }
    }
    let mut med = [0f64; 3];
    let mut p10 = [0f64; 3];
    for ci in 0..3 {
        med[ci] = median(&mut samples[ci]);
        p10[ci] = samples[ci][samples[ci].len() / 10];
    }
    (med, p10)
}

/// The table row and the machine-readable RESULT line of one case.
fn print_row(cs: &Case, threads: usize, med: [f64; 3], p10: [f64; 3], errs: [f64; 3]) {
    println!(
        "{:<40} {:>3} | {:>8.1} {:>8.1} {:>8.1} | {:>8.1} {:>8.1} {:>8.1} | {:.1e} {:.1e} {:.1e}",
        cs.name, threads, med[0], med[1], med[2], p10[0], p10[1], p10[2], errs[0], errs[1], errs[2]
    );
    println!(
        "RESULT\t{}\t{}\t{:.2}\t{:.2}\t{:.2}",
        cs.name, threads, med[0], med[1], med[2]
    );
}
