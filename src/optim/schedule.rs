//! Learning-rate schedules, evaluated once per epoch (epochs numbered from 1), with an optional
//! linear warm-up in front of any of them:
//!
//! ```text
//! warm-up (e ≤ W):  lr = base · e / W
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

    /// `schedule` from `base_lr` over `epochs` epochs, after `warmup` warm-up epochs.
    pub fn new(schedule: Schedule, base_lr: f64, warmup: usize, epochs: usize) -> Self {
        Self {
            schedule,
            base: base_lr,
            warmup,
            epochs,
            plateau_lr: base_lr,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The learning rate for epoch `epoch` (from 1).
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
