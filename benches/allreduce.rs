//! The in-order gradient sum of a distributed step on the gradient sizes of the networks in
//! BENCHMARKS.md, under MPI: the chain (`nabla::dist::sum_in_order`: chain reduce then ring
//! broadcast) against the direct reduce-scatter + all-gather (`nabla::dist::Reducer`, used
//! by the trainer when it moves fewer bytes), alternated round by round. Prints the median
//! wall time per sum, the median CPU time of the calling thread (what the sum costs a rank
//! when the cores are shared), and the effective rate (gradient bytes / wall time). Each rank
//! adds one micro-batch's gradient. Needs the `mpi` feature and `mpirun`:
//!
//! ```text
//! cargo bench --features mpi --bench allreduce --no-run   # prints the executable's path
//! mpirun --oversubscribe -np 2 target/release/deps/allreduce-<hash>
//! ```

use std::time::{Duration, Instant};

use nabla::dist::{Collective, Mpi, Reducer, all_agree, sum_in_order};

/// CPU seconds used by the calling thread so far.
fn thread_cpu() -> f64 {
    let mut t = libc_timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `t`.
    unsafe { clock_gettime(3, &mut t) };
    t.sec as f64 + t.nsec as f64 * 1e-9
}

#[repr(C)]
struct libc_timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    /// `clock_gettime(CLOCK_THREAD_CPUTIME_ID = 3, …)` from the C library.
    fn clock_gettime(clock: i32, t: *mut libc_timespec) -> i32;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut world = Mpi::init(Duration::from_secs(60))?;
    let (rank, size) = (world.rank(), world.size());
    if rank == 0 {
        println!(
            "ranks {size}: gradient values, MiB; per scheme median wall ms, median CPU ms of the \
             rank, MB/s of gradient"
        );
    }
    let counts = vec![1; size];
    let mut reducer = Reducer::new();
    for (name, values) in [
        ("784-256-128-10", 235_146usize),
        ("CNN of issue 12", 421_642),
        ("784-1024-1024-10", 1_863_690),
    ] {
        let term: Vec<f32> = (0..values).map(|i| (i % 97) as f32 * 1e-3).collect();
        let mut out = vec![0.0f32; values];
        let mut times = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
        for i in 0..60 {
            for (scheme, (wall, cpu)) in times.iter_mut().enumerate() {
                // Every rank starts together (the previous sum's tail is not timed).
                all_agree(&mut world, true)?;
                let (t, c) = (Instant::now(), thread_cpu());
                if scheme == 0 {
                    sum_in_order(&mut world, &[&term], &mut out)?;
                } else {
                    reducer.sum(&mut world, &[&term], &counts, &mut out)?;
                }
                if i >= 10 {
                    wall.push(t.elapsed().as_secs_f64());
                    cpu.push(thread_cpu() - c);
                }
                assert!(out[1] == term[1] * size as f32 || size > 2);
            }
        }
        if rank == 0 {
            let mib = values as f64 * 4.0 / (1 << 20) as f64;
            print!("{name:>18}: {values:>9} values, {mib:6.2} MiB");
            for (scheme, (wall, cpu)) in times.into_iter().enumerate() {
                let (w, c) = (median(wall), median(cpu));
                print!(
                    " | {}: {:7.3} ms, CPU {:7.3} ms, {:5.0} MB/s",
                    ["chain", "direct"][scheme],
                    w * 1e3,
                    c * 1e3,
                    values as f64 * 4.0 / w / 1e6
                );
            }
            println!();
        }
    }
    Ok(())
}
