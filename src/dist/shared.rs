//! Memory every rank of a run can read, when all of them run on one machine: one segment of
//! `f32` values per rank, which only its rank writes, and a barrier that makes what was written
//! before it visible to every rank after it.
//!
//! The trainer uses it for the sharded step (see [`crate::dist`]): each rank writes its gradient
//! terms into its segment, every rank reads the terms of the chunks it owns straight from the
//! others' segments (no message, no second copy), updates those chunks of the weights and
//! writes them back for the others to read. Under MPI this is an MPI-3 shared-memory window
//! (`MPI_Win_allocate_shared`); [`LocalGroup::with_shared_memory`](super::LocalGroup) gives
//! the ranks of one process the same thing, for tests.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::error::NablaError;

/// One segment per rank in memory all ranks can read (see the module docs).
///
/// A rank writes only its own segment and reads any; the caller separates a rank's writes from
/// the others' reads of the same values by [`SharedMemory::barrier`]s.
pub trait SharedMemory {
    /// Makes every rank's segment hold at least `len` values. Every rank calls it with the same
    /// `len` at the same point of the run (under MPI a larger window is made together); the
    /// values are not kept when it grows.
    fn reserve(&mut self, len: usize) -> Result<(), NablaError>;
    /// Calls `f` with the values `at` of this rank's segment, to write.
    fn write(&mut self, at: Range<usize>, f: &mut dyn FnMut(&mut [f32])) -> Result<(), NablaError>;
    /// Calls `f` with the values `at` of every rank's segment, in rank order, to read.
    fn read(&mut self, at: Range<usize>, f: &mut dyn FnMut(&[&[f32]])) -> Result<(), NablaError>;
    /// Returns once every rank has called it; what any rank wrote before it, every rank sees
    /// after it. Fails, naming what happened, when a rank stopped or did not come within the
    /// run's timeout.
    fn barrier(&mut self) -> Result<(), NablaError>;
}

/// The error for a range beyond a segment.
pub(super) fn outside(at: &Range<usize>, len: usize) -> NablaError {
    NablaError::Distributed(format!(
        "values {}..{} of a shared segment of {len}",
        at.start, at.end
    ))
}

/// The memory and barrier the members of one in-process group share.
struct Arena {
    segments: Vec<RwLock<Vec<f32>>>,
    gate: Mutex<Gate>,
    turn: Condvar,
}

/// Who has reached the current barrier.
struct Gate {
    /// Which ranks wait at the current barrier.
    arrived: Vec<bool>,
    generation: u64,
    /// A member that has stopped (its thread dropped it).
    gone: Option<usize>,
}

/// [`SharedMemory`] for the ranks of one process (threads): a member of
/// [`LocalGroup::with_shared_memory`](super::LocalGroup::with_shared_memory).
pub(super) struct LocalShared {
    arena: Arc<Arena>,
    rank: usize,
    timeout: Duration,
}

impl LocalShared {
    /// The `size` members of one arena, in rank order.
    pub(super) fn members(size: usize, timeout: Duration) -> Vec<LocalShared> {
        let arena = Arc::new(Arena {
            segments: (0..size).map(|_| RwLock::new(Vec::new())).collect(),
            gate: Mutex::new(Gate {
                arrived: vec![false; size],
                generation: 0,
                gone: None,
            }),
            turn: Condvar::new(),
        });
        (0..size)
            .map(|rank| LocalShared {
                arena: Arc::clone(&arena),
                rank,
                timeout,
            })
            .collect()
    }
}

fn poisoned<T>(_: T) -> NablaError {
    NablaError::Distributed("a rank panicked while it held the shared memory".into())
}

impl SharedMemory for LocalShared {
    fn reserve(&mut self, len: usize) -> Result<(), NablaError> {
        let mut mine = self.arena.segments[self.rank].write().map_err(poisoned)?;
        if mine.len() < len {
            mine.resize(len, 0.0);
        }
        Ok(())
    }

    fn write(&mut self, at: Range<usize>, f: &mut dyn FnMut(&mut [f32])) -> Result<(), NablaError> {
        let mut mine = self.arena.segments[self.rank].write().map_err(poisoned)?;
        let len = mine.len();
        f(mine.get_mut(at.clone()).ok_or_else(|| outside(&at, len))?);
        Ok(())
    }

    fn read(&mut self, at: Range<usize>, f: &mut dyn FnMut(&[&[f32]])) -> Result<(), NablaError> {
        let guards = (self.arena.segments.iter())
            .map(|s| s.read().map_err(poisoned))
            .collect::<Result<Vec<_>, _>>()?;
        let views = (guards.iter())
            .map(|g| g.get(at.clone()).ok_or_else(|| outside(&at, g.len())))
            .collect::<Result<Vec<_>, _>>()?;
        f(&views);
        Ok(())
    }

    fn barrier(&mut self) -> Result<(), NablaError> {
        let size = self.arena.segments.len();
        let mut gate = self.arena.gate.lock().map_err(poisoned)?;
        let generation = gate.generation;
        gate.arrived[self.rank] = true;
        if gate.arrived.iter().all(|&a| a) {
            gate.arrived.fill(false);
            gate.generation += 1;
            self.arena.turn.notify_all();
            return Ok(());
        }
        let deadline = Instant::now() + self.timeout;
        while gate.generation == generation {
            if let Some(rank) = gate.gone {
                return Err(NablaError::Distributed(format!("rank {rank} has stopped")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let late = (0..size).filter(|&r| !gate.arrived[r]);
                let late: Vec<String> = late.map(|r| format!("rank {r}")).collect();
                return Err(NablaError::Distributed(format!(
                    "{} did not reach the step's barrier within {:.0} s",
                    late.join(", "),
                    self.timeout.as_secs_f64()
                )));
            }
            gate = self
                .arena
                .turn
                .wait_timeout(gate, left)
                .map_err(poisoned)?
                .0;
        }
        Ok(())
    }
}

impl Drop for LocalShared {
    fn drop(&mut self) {
        if let Ok(mut gate) = self.arena.gate.lock() {
            gate.gone.get_or_insert(self.rank);
            self.arena.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_rank_writes_before_the_barrier_every_rank_reads_after_it() {
        let members = LocalShared::members(3, Duration::from_secs(10));
        let handles: Vec<_> = (members.into_iter())
            .map(|mut m| {
                std::thread::spawn(move || {
                    m.reserve(4).unwrap();
                    let rank = m.rank as f32;
                    m.write(1..3, &mut |v| v.fill(rank)).unwrap();
                    m.barrier().unwrap();
                    let mut seen = Vec::new();
                    m.read(1..3, &mut |segs| seen = segs.concat()).unwrap();
                    assert!(m.read(3..5, &mut |_| ()).is_err());
                    m.barrier().unwrap();
                    seen
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        }
    }

    #[test]
    fn a_barrier_names_the_rank_that_stopped_or_did_not_come() {
        let mut members = LocalShared::members(3, Duration::from_millis(200));
        let third = members.pop().unwrap();
        let mut second = members.pop().unwrap();
        let mut first = members.pop().unwrap();
        let waiting = std::thread::spawn(move || (second.barrier(), second));
        let err = first.barrier().unwrap_err().to_string();
        assert!(err.contains("rank 2 did not reach"), "{err}");
        let (second_saw, _second) = waiting.join().unwrap();
        assert!(second_saw.is_err());
        drop(third);
        let err = first.barrier().unwrap_err().to_string();
        assert!(err.contains("rank 2 has stopped"), "{err}");
    }
}
