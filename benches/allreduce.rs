//! The in-order gradient sum of a distributed step (`nabla::dist::sum_in_order`: chain reduce
//! then ring broadcast) on the gradient sizes of the networks in BENCHMARKS.md, under MPI:
//! median seconds per sum and the effective rate (gradient bytes / time). Each rank adds one
//! micro-batch's gradient. Needs the `mpi` feature and `mpirun`:
//!
//! ```text
//! cargo bench --features mpi --bench allreduce --no-run   # prints the executable's path
//! mpirun --oversubscribe -np 2 target/release/deps/allreduce-<hash>
//! ```

use std::time::{Duration, Instant};

use nabla::dist::{Collective, Mpi, sum_in_order};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut world = Mpi::init(Duration::from_secs(60))?;
    let (rank, size) = (world.rank(), world.size());
    if rank == 0 {
        println!(
            "ranks {size}: gradient values, MiB, median ms per in-order sum, MB/s of gradient"
        );
    }
    for (name, values) in [
        ("784-256-128-10", 235_146usize),
        ("CNN of issue 12", 421_642),
        ("784-1024-1024-10", 1_863_690),
    ] {
        let term: Vec<f32> = (0..values).map(|i| (i % 97) as f32 * 1e-3).collect();
        let mut out = vec![0.0f32; values];
        let mut times = Vec::new();
        for i in 0..60 {
            let t = Instant::now();
            sum_in_order(&mut world, &[&term], &mut out)?;
            if i >= 10 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        if rank == 0 {
            let mib = values as f64 * 4.0 / (1 << 20) as f64;
            println!(
                "{name:>18}: {values:>9} values, {mib:6.2} MiB, {:7.3} ms, {:7.0} MB/s",
                median * 1e3,
                values as f64 * 4.0 / median / 1e6
            );
        }
        assert!(out[1] == term[1] * size as f32 || size > 2);
    }
    Ok(())
}
