//! Learning-rate schedules, evaluated once per epoch (epochs numbered from 1), with an optional
//! linear warm-up in front of any of them, evaluated per iteration (as PyTorch's `LinearLR` and
//! Keras' warm-up do): with I iterations per epoch and k = (e − 1)·I + i the iteration counted
//! from 1 over the run (i = 1..I within epoch e),
//!
//! ```text
//! warm-up (e ≤ W):  lr = base · k / (W·I)      (from base/(W·I) up to base at the last one)
//! then, with t = e − W the epoch after warm-up (t ≥ 1) and T = epochs − W:
//! constant     lr = base
//! step         lr = base · γ^⌊(t − 1) / s⌋
//! exponential  lr = base · γ^(t − 1)
//! cosine       lr = min + (base − min) · (1 + cos(π (t − 1) / T)) / 2
//! plateau      lr ← lr · factor after `patience` epochs without a relative improvement of
//!              the monitored loss by more than 1e-4 (PyTorch's ReduceLROnPlateau, mode "rel")
//! ```

use serde::{Deserialize, Serialize};

/// Which schedule, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// The base learning rate throughout.
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        /// Epochs between decays.
        step_size: usize,
        /// Factor per decay.
        gamma: f64,
    },
    /// Multiply by `gamma` every epoch.
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// Cosine annealing from the base rate down to `min_lr` over the epochs after warm-up.
    Cosine {
        /// The final learning rate.
        min_lr: f64,
    },
    /// Reduce by `factor` when the monitored loss stops improving for `patience` epochs.
    Plateau {
        /// Factor per reduction.
        factor: f64,
        /// Epochs without improvement before a reduction.
        patience: usize,
    },
}

impl Schedule {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step { .. } => "step",
            Schedule::Exponential { .. } => "exponential",
            Schedule::Cosine { .. } => "cosine",
            Schedule::Plateau { .. } => "plateau",
        }
    }
}

/// A schedule applied to a base learning rate over a run of `epochs` epochs.
#[derive(Clone, Debug)]
pub struct LrScheduler {
    schedule: Schedule,
    base: f64,
    warmup: usize,
    epochs: usize,
    /// Iterations per epoch (the warm-up's granularity).
    iterations: usize,
    /// Plateau state: current rate, best loss seen, epochs since it improved.
    plateau_lr: f64,
    best: f64,
    bad_epochs: usize,
}

impl LrScheduler {
    /// The plateau schedule's state `(rate, best loss, epochs without improvement)`, for
    /// checkpoints.
    pub fn plateau_state(&self) -> (f64, f64, usize) {
        (self.plateau_lr, self.best, self.bad_epochs)
    }

    /// Restores [`LrScheduler::plateau_state`].
    pub fn set_plateau_state(&mut self, state: (f64, f64, usize)) {
        (self.plateau_lr, self.best, self.bad_epochs) = state;
    }

    /// `schedule` from `base_lr` over `epochs` epochs, after `warmup` warm-up epochs, with one
    /// iteration per epoch until [`LrScheduler::iterations_per_epoch`] says otherwise.
    pub fn new(schedule: Schedule, base_lr: f64, warmup: usize, epochs: usize) -> Self {
        Self {
            schedule,
            base: base_lr,
            warmup,
            epochs,
            iterations: 1,
            plateau_lr: base_lr,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The same scheduler with `iterations` iterations per epoch (at least 1), so the warm-up
    /// rises at every iteration.
    pub fn iterations_per_epoch(mut self, iterations: usize) -> Self {
        self.iterations = iterations.max(1);
        self
    }

    /// The learning rate of iteration `iteration` (from 1) of epoch `epoch` (from 1): the
    /// warm-up's rate during the warm-up epochs, the epoch's rate ([`LrScheduler::lr`]) after.
    pub fn lr_at(&self, epoch: usize, iteration: usize) -> f64 {
        let epoch = epoch.max(1);
        if epoch > self.warmup {
            return self.lr(epoch);
        }
        let per_epoch = self.iterations as f64;
        let k = (epoch - 1) as f64 * per_epoch + iteration.clamp(1, self.iterations) as f64;
        self.base * k / (self.warmup as f64 * per_epoch)
    }

    /// The learning rate for epoch `epoch` (from 1); during the warm-up, the rate its last
    /// iteration reaches (base · e / W).
    pub fn lr(&self, epoch: usize) -> f64 {
        let epoch = epoch.max(1);
        if epoch <= self.warmup {
            return self.base * epoch as f64 / self.warmup as f64;
        }
        let t = (epoch - self.warmup) as f64;
        match self.schedule {
            Schedule::Constant => self.base,
            Schedule::Step { step_size, gamma } => {
                self.base * gamma.powi(((t - 1.0) / step_size.max(1) as f64).floor() as i32)
            }
            Schedule::Exponential { gamma } => self.base * gamma.powi((t - 1.0) as i32),
            Schedule::Cosine { min_lr } => {
                let span = (self.epochs.saturating_sub(self.warmup)).max(1) as f64;
                min_lr
                    + (self.base - min_lr) * (1.0 + (std::f64::consts::PI * (t - 1.0) / span).cos())
                        / 2.0
            }
            Schedule::Plateau { .. } => self.plateau_lr,
        }
    }

    /// Tells the scheduler the monitored loss at the end of an epoch (used by `plateau`).
    pub fn observe(&mut self, epoch: usize, loss: f64) {
        if let Schedule::Plateau { factor, patience } = self.schedule {
            if epoch <= self.warmup {
                return;
            }
            if loss < self.best * (1.0 - 1e-4) {
                self.best = loss;
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs > patience {
                    self.plateau_lr *= factor;
                    self.bad_epochs = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let s = LrScheduler::new(
            Schedule::Step {
                step_size: 2,
                gamma: 0.5,
            },
            0.1,
            0,
            10,
        );
        let got: Vec<f64> = (1..=5).map(|e| s.lr(e)).collect();
        assert!(
            got.iter()
                .zip([0.1, 0.1, 0.05, 0.05, 0.025])
                .all(|(a, b)| close(*a, b))
        );
        let s = LrScheduler::new(Schedule::Exponential { gamma: 0.9 }, 1.0, 0, 10);
        assert!(close(s.lr(3), 0.81));
        let s = LrScheduler::new(Schedule::Cosine { min_lr: 0.0 }, 1.0, 0, 10);
        assert!(close(s.lr(1), 1.0));
        assert!(close(s.lr(6), 0.5));
        assert!(s.lr(10) < 0.03);
        let s = LrScheduler::new(Schedule::Constant, 0.3, 0, 10);
        assert!(close(s.lr(7), 0.3));
    }

    #[test]
    fn warmup_ramps_linearly_then_hands_over() {
        let s = LrScheduler::new(Schedule::Cosine { min_lr: 0.0 }, 1.0, 4, 14);
        assert!(close(s.lr(1), 0.25));
        assert!(close(s.lr(4), 1.0));
        assert!(close(s.lr(5), 1.0));
        assert!(close(s.lr(10), 0.5));
    }

    #[test]
    fn warmup_rises_at_every_iteration() {
        // One warm-up epoch of 4 iterations: 1/4, 2/4, 3/4, 1 of the base, then the schedule.
        let s = LrScheduler::new(Schedule::Constant, 0.1, 1, 3).iterations_per_epoch(4);
        let got: Vec<f64> = (1..=4).map(|i| s.lr_at(1, i)).collect();
        for (a, b) in got.iter().zip([0.025, 0.05, 0.075, 0.1]) {
            assert!(close(*a, b), "{got:?}");
        }
        assert!(close(s.lr_at(2, 1), 0.1) && close(s.lr_at(3, 4), 0.1));
        // Two warm-up epochs of 5 iterations: k / 10 over the 10 iterations, continuing across
        // the epoch boundary; the epoch's recorded rate is its last iteration's.
        let s =
            LrScheduler::new(Schedule::Cosine { min_lr: 0.0 }, 1.0, 2, 12).iterations_per_epoch(5);
        assert!(close(s.lr_at(1, 1), 0.1));
        assert!(close(s.lr_at(1, 5), 0.5) && close(s.lr(1), 0.5));
        assert!(close(s.lr_at(2, 1), 0.6));
        assert!(close(s.lr_at(2, 5), 1.0) && close(s.lr(2), 1.0));
        assert!(close(s.lr_at(3, 1), 1.0) && close(s.lr_at(3, 3), 1.0));
        assert!(close(s.lr_at(8, 2), s.lr(8)));
        // Strictly rising, starting at a small fraction of the base.
        let rates: Vec<f64> = (1..=2)
            .flat_map(|e| (1..=5).map(move |i| (e, i)))
            .map(|(e, i)| s.lr_at(e, i))
            .collect();
        assert!(
            rates.windows(2).all(|w| w[0] < w[1]) && rates[0] <= 0.1,
            "{rates:?}"
        );
    }

    #[test]
    fn plateau_reduces_after_patience_epochs_without_improvement() {
        let mut s = LrScheduler::new(
            Schedule::Plateau {
                factor: 0.1,
                patience: 2,
            },
            1.0,
            0,
            20,
        );
        for (e, loss) in [1.0, 0.9, 0.91, 0.92, 0.93].iter().enumerate() {
            s.observe(e + 1, *loss);
        }
        assert!(close(s.lr(6), 0.1));
        s.observe(6, 0.5);
        assert!(close(s.lr(7), 0.1));
    }
}
