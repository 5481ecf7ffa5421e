//! Ranks as threads of one process, joined by channels: the same [`Collective`] the trainer
//! uses under MPI, without MPI, for tests and examples.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::shared::LocalShared;
use super::{Collective, SharedMemory};
use crate::error::NablaError;

/// One message between two members.
enum Payload {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Builds the members of an in-process group (see [`LocalGroup::new`]).
#[derive(Debug)]
pub struct LocalGroup;

/// One rank of a [`LocalGroup`]: move it into its own thread.
pub struct LocalMember {
    rank: usize,
    /// `to[r]` sends to rank `r` (`None` for this rank itself).
    to: Vec<Option<Sender<Payload>>>,
    /// `from[r]` receives from rank `r`.
    from: Vec<Option<Receiver<Payload>>>,
    timeout: Duration,
    /// The group's shared memory, when made with [`LocalGroup::with_shared_memory`].
    shared: Option<LocalShared>,
}

impl LocalGroup {
    /// The `size` members of a new group, in rank order. A receive that waits longer than
    /// `timeout` fails, as does one whose sender is gone (its thread ended).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(size: usize, timeout: Duration) -> Vec<LocalMember> {
        let mut to: Vec<Vec<Option<Sender<Payload>>>> = (0..size).map(|_| Vec::new()).collect();
        let mut from: Vec<Vec<Option<Receiver<Payload>>>> = (0..size)
            .map(|_| (0..size).map(|_| None).collect())
            .collect();
        for (a, senders) in to.iter_mut().enumerate() {
            for (b, receivers) in from.iter_mut().enumerate() {
                if a == b {
                    senders.push(None);
                } else {
                    let (tx, rx) = channel();
                    senders.push(Some(tx));
                    receivers[a] = Some(rx);
                }
            }
        }
        to.into_iter()
            .zip(from)
            .enumerate()
            .map(|(rank, (to, from))| LocalMember {
                rank,
                to,
                from,
                timeout,
                shared: None,
            })
            .collect()
    }

    /// As [`LocalGroup::new`], and the members also share memory ([`Collective::shared`]),
    /// as the ranks of an MPI run on one machine do: the trainer then takes the sharded step.
    pub fn with_shared_memory(size: usize, timeout: Duration) -> Vec<LocalMember> {
        let mut members = Self::new(size, timeout);
        for (m, s) in members.iter_mut().zip(LocalShared::members(size, timeout)) {
            m.shared = Some(s);
        }
        members
    }
}

impl LocalMember {
    fn post(&self, to: usize, payload: Payload) -> Result<(), NablaError> {
        let gone = || NablaError::Distributed(format!("rank {to} has stopped"));
        match self.to.get(to).and_then(Option::as_ref) {
            Some(tx) => tx.send(payload).map_err(|_| gone()),
            None => Err(gone()),
        }
    }

    fn take(&self, from: usize) -> Result<Payload, NablaError> {
        let Some(rx) = self.from.get(from).and_then(Option::as_ref) else {
            return Err(NablaError::Distributed(format!(
                "no rank {from} to hear from"
            )));
        };
        rx.recv_timeout(self.timeout).map_err(|e| {
            NablaError::Distributed(match e {
                RecvTimeoutError::Timeout => format!(
                    "rank {from} sent nothing for {:.0} s",
                    self.timeout.as_secs_f64()
                ),
                RecvTimeoutError::Disconnected => format!("rank {from} has stopped"),
            })
        })
    }
}

fn wrong_length(from: usize, got: usize, want: usize) -> NablaError {
    NablaError::Distributed(format!(
        "rank {from} sent {got} values where {want} were expected"
    ))
}

impl Collective for LocalMember {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.to.len()
    }

    fn shared(&mut self) -> Option<&mut dyn SharedMemory> {
        self.shared.as_mut().map(|s| s as &mut dyn SharedMemory)
    }

    fn send(&mut self, to: usize, data: &[f32]) -> Result<(), NablaError> {
        self.post(to, Payload::F32(data.to_vec()))
    }

    fn receive(&mut self, from: usize, data: &mut [f32]) -> Result<(), NablaError> {
        match self.take(from)? {
            Payload::F32(v) if v.len() == data.len() => {
                data.copy_from_slice(&v);
                Ok(())
            }
            Payload::F32(v) => Err(wrong_length(from, v.len(), data.len())),
            Payload::F64(v) => Err(wrong_length(from, v.len(), data.len())),
        }
    }

    fn send_f64(&mut self, to: usize, data: &[f64]) -> Result<(), NablaError> {
        self.post(to, Payload::F64(data.to_vec()))
    }

    fn receive_f64(&mut self, from: usize, data: &mut [f64]) -> Result<(), NablaError> {
        match self.take(from)? {
            Payload::F64(v) if v.len() == data.len() => {
                data.copy_from_slice(&v);
                Ok(())
            }
            Payload::F64(v) => Err(wrong_length(from, v.len(), data.len())),
            Payload::F32(v) => Err(wrong_length(from, v.len(), data.len())),
        }
    }
}
