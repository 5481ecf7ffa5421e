//! `mpirun -np N nabla train …`: this process's rank, and its link to the other ranks.
//!
//! Under `mpirun`, every rank runs the same command. Rank 0 checks the output paths, then all
//! ranks load the data and train one model together (`nabla::dist`); only rank 0 prints and
//! writes files (the others' standard output goes to /dev/null; their errors still show).

use std::time::Duration;

use anyhow::Result;
use nabla::dist::Collective;

/// This process's place in a distributed run (rank 0 of 1 outside `mpirun`).
pub struct World {
    /// This process's rank.
    pub rank: usize,
    /// Ranks in the run.
    pub size: usize,
    group: Option<Box<dyn Collective>>,
    /// The ranks sum and update through shared memory (all on one machine).
    shared: bool,
    /// Ranks combining by messages sum each layer's gradients while backward goes on.
    pub overlap: bool,
}

/// The number of processes the launcher started, from the variables OpenMPI, MPICH and PMIx
/// set for each of them.
fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

impl World {
    /// A process on its own.
    pub fn solo() -> Self {
        Self {
            rank: 0,
            size: 1,
            group: None,
            shared: false,
            overlap: true,
        }
    }

    /// Joins the run `mpirun` started, or stands alone when there is none. `timeout`: how
    /// long a rank waits for another before it stops the run; `messages_only`: combine by MPI
    /// messages even when the ranks could share memory.
    pub fn join(timeout: Duration, messages_only: bool) -> Result<Self> {
        let launched = launched_size().unwrap_or(1);
        if launched <= 1 {
            return Ok(Self::solo());
        }
        join_mpi(launched, timeout, messages_only)
    }

    /// True on the rank that prints and writes files.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// True on every rank when every rank says `ok` (all ranks must call it).
    pub fn agree(&mut self, ok: bool) -> Result<bool> {
        match &mut self.group {
            Some(group) => Ok(nabla::dist::all_agree(&mut **group, ok)?),
            None => Ok(ok),
        }
    }

    /// The link to the other ranks, for the trainer (`None` alone).
    pub fn take_group(&mut self) -> Option<Box<dyn Collective>> {
        self.group.take()
    }

    /// Takes back the link lent to the trainer by [`World::take_group`].
    pub fn give_back(&mut self, group: Option<Box<dyn Collective>>) {
        if group.is_some() {
            self.group = group;
        }
    }

    /// `2 ranks × 1 thread, each rank 1 of every 2 micro-batches of 64 rows`.
    pub fn describe(&self, threads: usize, batch_size: usize) -> String {
        let (rank, size) = (self.rank, self.size);
        let micro_batches = nabla::train::micro_batches(batch_size);
        let share = nabla::train::rank_share(batch_size, rank, size).len();
        let how = match (self.shared, self.overlap) {
            (true, _) => "shared memory, each rank updating its share of the weights",
            (false, true) => "MPI messages, each layer's as soon as its backward is done",
            (false, false) => "MPI messages after the backward pass",
        };
        format!(
            "{size} MPI ranks × {threads} thread{}, rank {rank} computes {share} of every {micro_batches} micro-batches of {} rows, gradients combined through {how}",
            if threads == 1 { "" } else { "s" },
            nabla::train::micro_batch_rows(batch_size)
        )
    }
}

#[cfg(feature = "mpi")]
fn join_mpi(_launched: usize, timeout: Duration, messages_only: bool) -> Result<World> {
    let mut mpi = nabla::dist::Mpi::init(timeout)?;
    if messages_only {
        mpi.messages_only();
    }
    let (rank, size) = (mpi.rank(), mpi.size());
    if rank != 0 {
        silence_stdout()?;
    }
    Ok(World {
        rank,
        size,
        shared: mpi.shares_memory(),
        overlap: true,
        group: Some(Box::new(mpi)),
    })
}

#[cfg(not(feature = "mpi"))]
fn join_mpi(launched: usize, _timeout: Duration, _messages_only: bool) -> Result<World> {
    anyhow::bail!(nabla::NablaError::Usage(format!(
        "mpirun started {launched} copies of a nabla built without MPI support, so each would train alone; build it with `cargo build --release --features mpi` (needs OpenMPI and libclang: apt-get install libopenmpi-dev openmpi-bin libclang-dev clang)"
    )))
}

/// Points this process's standard output at /dev/null (ranks other than 0).
#[cfg(feature = "mpi")]
fn silence_stdout() -> Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: dup2 on two valid descriptors; stdout's old file is closed by the kernel.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}
