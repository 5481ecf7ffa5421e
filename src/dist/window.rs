//! [`SharedMemory`] for the ranks of an MPI job on one machine: an MPI-3 shared-memory window
//! (`MPI_Win_allocate_shared` over the node's communicator), one segment per rank, read and
//! written in place by plain loads and stores. The mpi crate's safe API has no shared windows,
//! so this file calls the MPI library directly through `mpi::ffi`.

use std::ops::Range;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;

use super::SharedMemory;
use super::mpi::{poll_until, wait_for};
use super::shared::outside;
use crate::error::NablaError;

/// The node's ranks and their window (none until the first [`SharedMemory::reserve`]).
pub(super) struct MpiShared {
    // Dropped first: the window is freed while MPI is still up.
    window: Option<Window>,
    node: SimpleCommunicator,
    timeout: Duration,
    /// Barriers this rank has reached.
    barriers: u32,
}

/// One shared-memory window and where every rank's segment is mapped in this process.
struct Window {
    win: ffi::MPI_Win,
    /// Segment of rank `r` starts at `bases[r]`, `len` values long, after [`PRIVATE`] values
    /// of the window's own (value 0: how many barriers the rank has reached).
    bases: Vec<*mut f32>,
    len: usize,
}

/// Values before each rank's segment that the window keeps for itself (one cache line).
const PRIVATE: usize = 16;

impl MpiShared {
    /// The shared memory of `world` when all its ranks run on this machine (`None` when some
    /// run elsewhere, or when the run has one rank). Collective over `world`.
    pub(super) fn of(world: &SimpleCommunicator, timeout: Duration) -> Option<Self> {
        // Every rank takes the same decision: a node that does not hold all ranks means that
        // no rank's node holds them all.
        // Key = world rank, so node ranks are world ranks when the node holds them all.
        let node = world.split_shared(world.rank());
        let everyone = node.size() == world.size() && world.size() > 1;
        everyone.then_some(Self {
            window: None,
            node,
            timeout,
            barriers: 0,
        })
    }

    fn rank(&self) -> usize {
        self.node.rank() as usize
    }

    /// This window's segment of `rank`, `at`, after the bounds check.
    fn segment(&self, rank: usize, at: &Range<usize>) -> Result<*mut f32, NablaError> {
        let (base, len) = match &self.window {
            Some(w) => (w.bases[rank], w.len),
            None => (std::ptr::null_mut(), 0),
        };
        if at.start > at.end || at.end > len {
            return Err(outside(at, len));
        }
        if at.is_empty() {
            return Ok(std::ptr::NonNull::dangling().as_ptr());
        }
        // SAFETY: `at.start ≤ len`, inside (or one past) the segment's mapping.
        Ok(unsafe { base.add(at.start) })
    }

    /// A barrier through MPI (`MPI_Ibarrier`, polled under the run's timeout), for when the
    /// window's counters cannot be used: before it is mapped, and to start them.
    fn message_barrier(&self, what: &'static str) {
        self.sync();
        let request = self.node.immediate_barrier();
        wait_for(
            &self.node,
            self.timeout,
            [Some((request, None, what))],
            &|| "a rank".into(),
        );
        self.sync();
    }

    fn sync(&self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if let Some(w) = &self.window {
            // SAFETY: a live window in a passive-target epoch (locked at allocation).
            unsafe { ffi::MPI_Win_sync(w.win) };
        }
    }
}

fn mpi_error(what: &str, code: c_int) -> NablaError {
    NablaError::Distributed(format!("{what} failed (MPI error code {code})"))
}

impl Window {
    /// Allocates `len` values per rank over `node` (collective) and maps every segment.
    fn allocate(node: &SimpleCommunicator, len: usize) -> Result<Self, NablaError> {
        // Whole cache lines per rank, so every segment starts on one.
        let padded = (PRIVATE + len).next_multiple_of(PRIVATE);
        let bytes = (padded * size_of::<f32>()) as ffi::MPI_Aint;
        let mut base: *mut f32 = std::ptr::null_mut();
        // SAFETY: reading an immutable constant of the MPI library.
        let mut win: ffi::MPI_Win = unsafe { ffi::RSMPI_WIN_NULL };
        // SAFETY: valid communicator and out-pointers; MPI writes a pointer into `base`.
        let code = unsafe {
            ffi::MPI_Win_allocate_shared(
                bytes,
                size_of::<f32>() as c_int,
                ffi::RSMPI_INFO_NULL,
                node.as_raw(),
                (&mut base as *mut *mut f32).cast(),
                &mut win,
            )
        };
        if code != 0 {
            return Err(mpi_error("MPI_Win_allocate_shared", code));
        }
        // One passive-target epoch for the window's life, so MPI_Win_sync may be called.
        // SAFETY: `win` was just created.
        unsafe { ffi::MPI_Win_lock_all(ffi::MPI_MODE_NOCHECK as c_int, win) };
        let mut window = Window {
            win,
            bases: Vec::new(),
            len,
        };
        for r in 0..node.size() {
            let (mut size, mut unit, mut at): (ffi::MPI_Aint, c_int, *mut f32) =
                (0, 0, std::ptr::null_mut());
            // SAFETY: `r` is a rank of the window's communicator; out-pointers are valid.
            let code = unsafe {
                ffi::MPI_Win_shared_query(
                    win,
                    r,
                    &mut size,
                    &mut unit,
                    (&mut at as *mut *mut f32).cast(),
                )
            };
            if code != 0 || (size as usize) < padded * size_of::<f32>() {
                return Err(mpi_error("MPI_Win_shared_query", code));
            }
            // SAFETY: the segment is `padded ≥ PRIVATE` values long.
            window.bases.push(unsafe { at.add(PRIVATE) });
        }
        Ok(window)
    }
}

impl Window {
    /// Rank `r`'s count of barriers reached (stored before it waits at one).
    fn counter(&self, r: usize) -> &AtomicU32 {
        // SAFETY: the first of the PRIVATE values before rank r's segment, 4-byte aligned
        // (f32), live as long as the window; only rank r stores to it, atomically.
        unsafe { AtomicU32::from_ptr(self.bases[r].sub(PRIVATE).cast()) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: the window is live and locked since allocation; freeing is collective, and
        // every rank drops its window at the same point (a larger reserve, or the run's end).
        unsafe {
            ffi::MPI_Win_unlock_all(self.win);
            ffi::MPI_Win_free(&mut self.win);
        }
    }
}

impl SharedMemory for MpiShared {
    fn reserve(&mut self, len: usize) -> Result<(), NablaError> {
        if self.window.as_ref().is_some_and(|w| w.len >= len) {
            return Ok(());
        }
        self.window = None;
        let window = Window::allocate(&self.node, len)?;
        // Every rank's counter starts at the barriers it has passed (the same on every rank)
        // before anyone compares counters.
        window
            .counter(self.rank())
            .store(self.barriers, Ordering::Release);
        self.window = Some(window);
        self.message_barrier("map the shared-memory window");
        Ok(())
    }

    fn write(&mut self, at: Range<usize>, f: &mut dyn FnMut(&mut [f32])) -> Result<(), NablaError> {
        let start = self.segment(self.rank(), &at)?;
        // SAFETY: inside this rank's segment (checked); only this rank writes it, and the
        // caller's barriers keep other ranks from reading these values meanwhile.
        f(unsafe { std::slice::from_raw_parts_mut(start, at.len()) });
        Ok(())
    }

    fn read(&mut self, at: Range<usize>, f: &mut dyn FnMut(&[&[f32]])) -> Result<(), NablaError> {
        let mut views = Vec::with_capacity(self.node.size() as usize);
        for r in 0..self.node.size() as usize {
            let start = self.segment(r, &at)?;
            // SAFETY: inside rank r's segment (checked); the caller's barriers keep its owner
            // from writing these values while they are read.
            views.push(unsafe { std::slice::from_raw_parts(start.cast_const(), at.len()) });
        }
        f(&views);
        Ok(())
    }

    /// A barrier in the window itself: each rank stores how many barriers it has reached and
    /// waits until every rank's count is as high. No MPI call, so a rank stopped anywhere
    /// (even right after storing its count) is the one named: the others pass this barrier
    /// and find it behind at the next.
    fn barrier(&mut self) -> Result<(), NablaError> {
        self.barriers = self.barriers.wrapping_add(1);
        let reached = self.barriers;
        let Some(w) = &self.window else {
            self.message_barrier("reach the step's barrier");
            return Ok(());
        };
        self.sync();
        w.counter(self.rank()).store(reached, Ordering::Release);
        // Counts differ by at most one barrier, so a wrapped difference tells who is behind.
        let behind =
            |r: &usize| (reached.wrapping_sub(w.counter(*r).load(Ordering::Acquire)) as i32) > 0;
        let ranks = 0..w.bases.len();
        let late = || {
            let names: Vec<String> = ranks
                .clone()
                .filter(behind)
                .map(|r| format!("rank {r}"))
                .collect();
            names.join(", ")
        };
        poll_until(&self.node, self.timeout, &late, || {
            ranks
                .clone()
                .any(|r| behind(&r))
                .then_some(("reach the step's barrier", None))
        });
        self.sync();
        Ok(())
    }
}
