//! The ranks of an `mpirun` job as a [`Collective`] (cargo feature `mpi`).

use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{Destination, Source};

use super::window::MpiShared;
use super::{Collective, SharedMemory};
use crate::error::NablaError;

/// This process's place in an MPI job (`MPI_COMM_WORLD`).
///
/// Every send and receive polls for completion until a deadline. A peer that sends nothing
/// within the timeout ends the whole job: the rank that noticed prints which rank it waited
/// for and calls `MPI_Abort` (MPI cannot take back a message in flight, so there is no clean
/// way to continue). A rank that dies is noticed by `mpirun`, which stops the others and names
/// it.
pub struct Mpi {
    /// The shared-memory window of a job whose ranks all run on this machine (dropped first).
    shared: Option<MpiShared>,
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
        let world = universe.world();
        Ok(Self {
            shared: MpiShared::of(&world, timeout),
            world,
            timeout,
            _universe: universe,
        })
    }

    /// Whether the ranks share memory (all run on this machine; see [`Collective::shared`]).
    pub fn shares_memory(&self) -> bool {
        self.shared.is_some()
    }

    /// Combines the ranks by MPI messages only, as between machines, even when they share
    /// memory. Every rank must call it, or none.
    pub fn messages_only(&mut self) {
        self.shared = None;
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits for every request (each with the peer it concerns and what that peer should
    /// do) until the deadline; past it, reports the first peer still pending and aborts.
    fn finish<'a, D: ?Sized, S: Scope<'a>>(&self, pending: [Option<Pending<'a, D, S>>; 2]) {
        wait_for(&self.world, self.timeout, pending, &|| "a rank".into());
    }
}

/// Waits for every request until `timeout`; past it, prints which rank did not do what (the
/// request's peer, or `late()` for a request that concerns every rank), and aborts every rank
/// of `comm`.
pub(super) fn wait_for<'a, D: ?Sized, S: Scope<'a>, const N: usize>(
    comm: &SimpleCommunicator,
    timeout: Duration,
    mut pending: [Option<Pending<'a, D, S>>; N],
    late: &dyn Fn() -> String,
) {
    poll_until(comm, timeout, late, || {
        for slot in &mut pending {
            if let Some((request, peer, what)) = slot.take()
                && let Err(request) = request.test()
            {
                *slot = Some((request, peer, what));
            }
        }
        let (_, peer, what) = pending.iter().flatten().next()?;
        Some((*what, *peer))
    });
}

/// Calls `waiting` until it returns `None` (done), yielding and then sleeping 50 µs between
/// calls; past `timeout`, prints which rank did not do what (`waiting`'s last answer: what,
/// and the peer it concerns, or `late()` for every rank's business) and aborts every rank of
/// `comm`. The one wait of nabla's MPI code, for messages and the shared-memory barrier alike.
pub(super) fn poll_until(
    comm: &SimpleCommunicator,
    timeout: Duration,
    late: &dyn Fn() -> String,
    mut waiting: impl FnMut() -> Option<(&'static str, Option<usize>)>,
) {
    let started = Instant::now();
    let mut polls = 0u32;
    while let Some((what, peer)) = waiting() {
        polls += 1;
        if polls < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
        if polls.is_multiple_of(64) && started.elapsed() > timeout {
            let who = peer.map_or_else(late, |p| format!("rank {p}"));
            eprintln!(
                "error: rank {}: {who} did not {what} within {:.0} s (the MPI timeout); stopping every rank",
                comm.rank(),
                timeout.as_secs_f64()
            );
            comm.abort(1);
        }
    }
}

/// A request in flight, the peer it concerns (if one) and what that peer should do.
pub(super) type Pending<'a, D, S> = (Request<'a, D, S>, Option<usize>, &'static str);

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn shared(&mut self) -> Option<&mut dyn SharedMemory> {
        self.shared.as_mut().map(|s| s as &mut dyn SharedMemory)
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn send(&mut self, to: usize, data: &[f32]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(to as i32);
        mpi::request::scope(|scope| {
            self.finish([
                Some((peer.immediate_send(scope, data), Some(to), "take a message")),
                None,
            ])
        });
        Ok(())
    }

    fn receive(&mut self, from: usize, data: &mut [f32]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            self.finish([
                Some((peer.immediate_receive_into(scope, data), Some(from), "send")),
                None,
            ])
        });
        Ok(())
    }

    fn send_f64(&mut self, to: usize, data: &[f64]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(to as i32);
        mpi::request::scope(|scope| {
            self.finish([
                Some((peer.immediate_send(scope, data), Some(to), "take a message")),
                None,
            ])
        });
        Ok(())
    }

    fn receive_f64(&mut self, from: usize, data: &mut [f64]) -> Result<(), NablaError> {
        let peer = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            self.finish([
                Some((peer.immediate_receive_into(scope, data), Some(from), "send")),
                None,
            ])
        });
        Ok(())
    }

    fn exchange(
        &mut self,
        send: Option<(usize, &[f32])>,
        recv: Option<(usize, &mut [f32])>,
    ) -> Result<(), NablaError> {
        mpi::request::scope(|scope| {
            let sent = send.map(|(to, data)| {
                let peer = self.world.process_at_rank(to as i32);
                (peer.immediate_send(scope, data), Some(to), "take a message")
            });
            let heard = recv.map(|(from, data)| {
                let peer = self.world.process_at_rank(from as i32);
                (peer.immediate_receive_into(scope, data), Some(from), "send")
            });
            self.finish([heard, sent]);
        });
        Ok(())
    }
}
