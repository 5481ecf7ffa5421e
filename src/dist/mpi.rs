//! The ranks of an `mpirun` job as a [`Collective`] (cargo feature `mpi`).

use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{Destination, Source};

use super::Collective;
use crate::error::NablaError;

/// This process's place in an MPI job (`MPI_COMM_WORLD`).
///
/// Every send and receive polls for completion until a deadline. A peer that sends nothing
/// within the timeout ends the whole job: the rank that noticed prints which rank it waited
/// for and calls `MPI_Abort` (MPI cannot take back a message in flight, so there is no clean
/// way to continue). A rank that dies is noticed by `mpirun`, which stops the others and names
/// it.
pub struct Mpi {
    // Dropped last: finalises MPI.
    world: SimpleCommunicator,
    timeout: Duration,
    _universe: Universe,
}

impl Mpi {
    /// Initialises MPI (only the calling thread talks to MPI: rayon workers never do). Fails
    /// when MPI was initialised already in this process.
    pub fn init(timeout: Duration) -> Result<Self, NablaError> {
        let (universe, _) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or_else(|| {
                NablaError::Distributed("MPI was initialised already in this process".into())
            })?;
        Ok(Self {
            world: universe.world(),
            timeout,
            _universe: universe,
        })
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits for `request` until the deadline; past it, reports and aborts the job.
    fn finish<'a, D: ?Sized, S: Scope<'a>>(
        &self,
        mut request: Request<'a, D, S>,
        peer: usize,
        what: &str,
    ) {
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            polls += 1;
            if polls < 1000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            if polls.is_multiple_of(64) && started.elapsed() > self.timeout {
                eprintln!(
                    "error: rank {}: rank {peer} did not {what} within {:.0} s (the MPI timeout); stopping every rank",
                    self.world.rank(),
                    self.timeout.as_secs_f64()
                );
                self.world.abort(1);
            }
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn send(&mut self, to: usize, data: &[f32]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(to as i32);
        mpi::request::scope(|scope| {
            self.finish(peer.immediate_send(scope, data), to, "take a message")
        });
        Ok(())
    }

    fn receive(&mut self, from: usize, data: &mut [f32]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            self.finish(peer.immediate_receive_into(scope, data), from, "send")
        });
        Ok(())
    }

    fn send_f64(&mut self, to: usize, data: &[f64]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(to as i32);
        mpi::request::scope(|scope| {
            self.finish(peer.immediate_send(scope, data), to, "take a message")
        });
        Ok(())
    }

    fn receive_f64(&mut self, from: usize, data: &mut [f64]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            self.finish(peer.immediate_receive_into(scope, data), from, "send")
        });
        Ok(())
    }
}
