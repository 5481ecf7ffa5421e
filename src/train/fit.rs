//! The fit loop and evaluation.

use std::time::Instant;

use rayon::prelude::*;

use super::diagnosis::{Diagnosis, diagnose};
use super::{
    groups, iterations_per_epoch, micro_batch_rows, micro_batches, micro_batches_per_group,
    rank_share,
};
use crate::autograd::{Grads, Tape, Workspace};
use crate::data::Dataset;
use crate::data::augment::Augmenter;
use crate::dist::Collective;
use crate::error::{Message, NablaError, Setting};
use crate::loss::{Loss, Targets};
use crate::nn::{BatchStats, Module, Network, Snapshot};
use crate::optim::{LrScheduler, Optimizer, Schedule, global_norm};
use crate::rng::ChaCha8Rng;
use crate::rng::{self, Stream};

/// The datasets of a run: the training set, an optional validation set (evaluated every epoch,
/// and the only loss that picks anything: the best epoch, early stopping) and an optional test
/// set (evaluated and reported, never consulted).
#[derive(Clone, Copy, Debug)]
pub struct Splits<'a> {
    /// Trained on.
    pub train: &'a Dataset,
    /// Held out from training, watched every epoch.
    pub val: Option<&'a Dataset>,
    /// Evaluated every epoch and reported (its metrics are `None` without one).
    pub test: Option<&'a Dataset>,
}

impl<'a> Splits<'a> {
    /// Training and test sets, no validation set.
    pub fn new(train: &'a Dataset, test: &'a Dataset) -> Self {
        Self {
            train,
            val: None,
            test: Some(test),
        }
    }

    /// A training set alone: no validation or test set.
    pub fn train_only(train: &'a Dataset) -> Self {
        Self {
            train,
            val: None,
            test: None,
        }
    }

    /// The same with a validation set (or none).
    pub fn with_validation(self, val: Option<&'a Dataset>) -> Self {
        Self { val, ..self }
    }
}

/// The hook that saves a checkpoint: the state, model and optimizer after an epoch.
type CheckpointHook<'h, M> =
    Box<dyn FnMut(&FitState, &Network<M>, &Optimizer) -> Result<(), NablaError> + 'h>;

/// What a run calls back, each optional: every iteration (progress bars, per-iteration logs),
/// every epoch's metrics, and the state to save after every epoch (checkpoints).
pub struct Hooks<'h, M = crate::nn::Sequential> {
    on_iteration: Box<dyn FnMut(&IterationStats) + 'h>,
    on_epoch: Box<dyn FnMut(&EpochMetrics) + 'h>,
    on_checkpoint: CheckpointHook<'h, M>,
    stop: Option<&'h std::sync::atomic::AtomicBool>,
}

impl<M> Default for Hooks<'_, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'h, M> Hooks<'h, M> {
    /// No hooks.
    pub fn new() -> Self {
        Self {
            on_iteration: Box::new(|_| {}),
            on_epoch: Box::new(|_| {}),
            on_checkpoint: Box::new(|_, _, _| Ok(())),
            stop: None,
        }
    }

    /// Ends the run after the step in progress once `flag` is set (a Ctrl-C handler sets it):
    /// the partial epoch is not recorded, the model holds the weights after that step (or the
    /// best epoch's, as at a normal end), and [`FitReport::interrupted`] is true.
    pub fn stop_when(mut self, flag: &'h std::sync::atomic::AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Calls `f` after every iteration.
    pub fn on_iteration(mut self, f: impl FnMut(&IterationStats) + 'h) -> Self {
        self.on_iteration = Box::new(f);
        self
    }

    /// Calls `f` with every epoch's metrics.
    pub fn on_epoch(mut self, f: impl FnMut(&EpochMetrics) + 'h) -> Self {
        self.on_epoch = Box::new(f);
        self
    }

    /// Calls `f` after every epoch with what a checkpoint needs ([`Trainer::resume`] continues
    /// from it); an error ends the run.
    pub fn on_checkpoint(
        mut self,
        f: impl FnMut(&FitState, &Network<M>, &Optimizer) -> Result<(), NablaError> + 'h,
    ) -> Self {
        self.on_checkpoint = Box::new(f);
        self
    }
}

/// Settings of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch_size: usize,
    /// Seed of the shuffling streams.
    pub seed: u64,
    /// Worker threads (1 = everything on the calling thread).
    pub threads: usize,
    /// Learning-rate schedule (applied to the optimizer's rate at the start).
    pub schedule: Schedule,
    /// Linear warm-up epochs before the schedule.
    pub warmup: usize,
    /// Stop after this many epochs without improvement of the validation loss (ignored without
    /// a validation set: the test set never chooses).
    pub early_stopping: Option<usize>,
    /// Rescale the summed gradient so its global L2 norm is at most this.
    pub clip_grad_norm: Option<f64>,
    /// What training minimises; `None`: the usual loss for the training data's task
    /// (cross-entropy for classes, MSE for numbers, see [`Loss::for_task`]).
    pub loss: Option<Loss>,
    /// Image augmentation of the training samples as they are gathered (see
    /// [`crate::data::augment`]); `None`: the images as they are.
    pub augment: Option<Augmenter>,
}

impl Default for TrainConfig {
    /// 10 epochs of mini-batches of 32, seed 42, one thread, a constant learning rate, no
    /// early stopping, no clipping: change what you need with the builder methods.
    fn default() -> Self {
        Self::new(10, 32, 42, 1)
    }
}

impl TrainConfig {
    /// Plain settings by position: constant learning rate, no early stopping, no clipping.
    /// Reads better as `TrainConfig::default().epochs(30).batch_size(32).seed(7).threads(2)`.
    pub fn new(epochs: usize, batch_size: usize, seed: u64, threads: usize) -> Self {
        Self {
            epochs,
            batch_size,
            seed,
            threads,
            schedule: Schedule::Constant,
            warmup: 0,
            early_stopping: None,
            clip_grad_norm: None,
            loss: None,
            augment: None,
        }
    }

    /// Passes over the training data.
    #[must_use]
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Samples per mini-batch.
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Seed of the shuffling streams.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Worker threads (1 = everything on the calling thread).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The learning-rate schedule.
    #[must_use]
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Linear warm-up epochs before the schedule (the rate rises at every iteration).
    #[must_use]
    pub fn warmup(mut self, epochs: usize) -> Self {
        self.warmup = epochs;
        self
    }

    /// Stop after `patience` epochs without a lower validation loss.
    #[must_use]
    pub fn early_stopping(mut self, patience: usize) -> Self {
        self.early_stopping = Some(patience);
        self
    }

    /// Rescale the summed gradient so its global L2 norm is at most `max_norm`.
    #[must_use]
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_grad_norm = Some(max_norm);
        self
    }

    /// What training minimises, instead of the usual loss for the data's task.
    #[must_use]
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = Some(loss);
        self
    }

    /// Augment the training images as they are gathered.
    #[must_use]
    pub fn augment(mut self, augment: Augmenter) -> Self {
        self.augment = Some(augment);
        self
    }
}

/// Everything a finished run reports beyond its per-epoch metrics.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// Per-epoch metrics, epoch 1 first.
    pub history: Vec<EpochMetrics>,
    /// The epoch whose weights the model holds at the end: the one with the lowest validation
    /// loss when there is a validation set, otherwise the last (0: the initial weights, when
    /// the run diverged in its first epoch).
    pub kept_epoch: usize,
    /// True when early stopping ended the run before the last epoch.
    pub stopped_early: bool,
    /// True when the run was stopped from outside ([`Hooks::stop_when`]) before its end.
    pub interrupted: bool,
    /// The fit verdict from the curves.
    pub diagnosis: Option<Diagnosis>,
    /// Set when training diverged (a non-finite loss or gradient, or a finite explosion, see
    /// [`Explosion`]): why, and what to try. The run stopped there and the model holds the last
    /// good weights (those of `kept_epoch`).
    pub diverged: Option<Message>,
}

/// Where a run stands at the end of an epoch: with the model, the optimizer's state and the
/// batch-norm running statistics, everything needed to continue it exactly.
#[derive(Clone, Debug)]
pub struct FitState {
    /// Epochs completed.
    pub epoch: usize,
    /// Training steps taken (names the dropout streams).
    pub steps: u64,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
    /// The best epoch so far: (monitored loss, epoch, the network's tensors then), when the run
    /// keeps it.
    pub best: Option<(f64, usize, Snapshot)>,
    /// The plateau schedule's state (see [`LrScheduler::plateau_state`]).
    pub scheduler: (f64, f64, usize),
}

/// What one epoch measured. Classification fills the accuracies, regression the MAE, RMSE
/// and R² (in the target's original units); fields that do not apply are left out of the JSON.
/// Losses are those optimised: cross-entropy, or the MSE of the standardised target.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches (as the weights changed).
    pub train_loss: f64,
    /// Fraction of training samples classified correctly during the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    /// Mean loss on the validation set after the epoch (when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Validation accuracy (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Validation R² (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_r2: Option<f64>,
    /// Mean loss on the test set after the epoch (`None`, `null` in JSON, without a test set).
    #[serde(default)]
    pub test_loss: Option<f64>,
    /// Fraction of the test set classified correctly after the epoch (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Mean absolute error on the test set, original units (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
    /// Root mean squared error on the test set, original units (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_rmse: Option<f64>,
    /// Coefficient of determination on the test set (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_r2: Option<f64>,
    /// Seconds spent in training steps (evaluation excluded).
    pub seconds: f64,
    /// Learning rate in force during the epoch.
    pub learning_rate: f64,
}

/// How well a model does on a dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss: cross-entropy, or the MSE of the standardised target.
    pub loss: f64,
    /// Fraction classified correctly (classification).
    pub accuracy: Option<f64>,
    /// MAE, RMSE and R² in the target's original units (regression).
    pub regression: Option<RegressionMetrics>,
}

/// Regression quality in the target's original units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionMetrics {
    /// Mean absolute error `(1/n) Σ |ŷ − y|`.
    pub mae: f64,
    /// Root mean squared error `√((1/n) Σ (ŷ − y)²)`.
    pub rmse: f64,
    /// `R² = 1 − Σ (ŷ − y)² / Σ (y − ȳ)²` (NaN when every `y` is the same).
    pub r2: f64,
}

/// Per-group state (the tape's buffers, reused by the group's micro-batches one after
/// another), kept across steps so a step allocates nothing.
pub(super) struct Worker {
    ws: Workspace,
    targets: Targets,
    /// One image, for augmentation.
    scratch: Vec<f32>,
}

/// What one micro-batch of a step produced besides its gradient, kept per micro-batch so the
/// totals and running statistics are folded in micro-batch order.
pub(super) struct MicroOut {
    pub(super) stats: BatchStats,
    pub(super) loss_sum: f64,
    pub(super) correct: usize,
}

/// Runs mini-batch training; owns the thread pool and the reusable buffers.
pub struct Trainer {
    pub(super) config: TrainConfig,
    pub(super) pool: rayon::ThreadPool,
    /// One per gradient group (see [`super::micro_batches_per_group`]).
    pub(super) workers: Vec<Worker>,
    /// One per micro-batch.
    pub(super) outs: Vec<MicroOut>,
    /// One gradient set per group, the sum of its micro-batches' gradients (beside `workers`,
    /// so the optimizer can take them all as one slice and sum them in order as it updates).
    pub(super) grads: Vec<Grads>,
    order: Vec<usize>,
    /// Training steps taken so far: names each step's dropout stream.
    steps: u64,
    /// The epoch being trained (from 1; 0 before [`Trainer::fit`]): names the augmentation
    /// draws.
    epoch: u64,
    /// The other processes of a distributed run (see [`Trainer::distributed`]).
    pub(super) group: Option<Box<dyn Collective>>,
    /// A distributed step's summed gradient.
    pub(super) sum: Option<super::combine::Summed>,
    /// The layout of a sharded distributed step (ranks sharing memory).
    pub(super) shard: Option<super::shard::Shard>,
    /// Sum a distributed step's gradients while backward runs (see [`Trainer::overlap`]).
    pub(super) overlap: bool,
    /// Whether some rank was asked to stop, agreed inside the last sharded step.
    pub(super) stop_agreed: Option<bool>,
}

impl Trainer {
    /// A trainer for `config`; fails on a zero batch size or thread count.
    pub fn new(config: TrainConfig) -> Result<Self, NablaError> {
        if config.batch_size == 0 {
            return Err(NablaError::Settings(
                Message::new()
                    .setting(Setting::BatchSize)
                    .text(" must be at least 1"),
            ));
        }
        if config.threads == 0 {
            return Err(NablaError::Settings(
                Message::new()
                    .setting(Setting::Threads)
                    .text(" must be at least 1"),
            ));
        }
        // nabla's own threads flush subnormals for their whole life (see `simd::ftz`).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .start_handler(|_| crate::simd::ftz::set_on_this_thread())
            .build()
            .map_err(|e| {
                NablaError::Usage(format!("cannot start {} threads: {e}", config.threads))
            })?;
        // Start every worker thread now and let it set up its GEMM buffers, so the first
        // training step does not pay for it and steady-state steps allocate nothing.
        let warm_up = || {
            crate::kernels::matmul::warm_up_thread();
            crate::optim::warm_up_thread();
        };
        pool.broadcast(|_| warm_up());
        warm_up();
        Ok(Self {
            config,
            pool,
            workers: Vec::new(),
            outs: Vec::new(),
            grads: Vec::new(),
            order: Vec::new(),
            steps: 0,
            epoch: 0,
            group: None,
            sum: None,
            shard: None,
            overlap: true,
            stop_agreed: None,
        })
    }

    /// Makes this trainer one rank of a data-parallel run over `group` (see [`crate::dist`]):
    /// it computes its share of every batch's micro-batches and combines the results with the
    /// other ranks, so every rank ends each step with the weights one process would have.
    /// Every rank must be given the same model, data, settings and seed.
    pub fn distributed(mut self, group: Box<dyn Collective>) -> Self {
        self.group = (group.size() > 1).then_some(group);
        self.shard = None;
        self
    }

    /// Whether a distributed run whose ranks combine by messages sums each layer's gradients
    /// across the ranks while the earlier layers' backward still runs (on by default; the same
    /// bits either way): the micro-batches then run on the trainer's threads while the calling
    /// thread talks to the other ranks. Ranks that share memory take the sharded step instead.
    pub fn overlap(mut self, on: bool) -> Self {
        self.overlap = on;
        self
    }

    /// Hands back the group given to [`Trainer::distributed`] (the trainer is a single
    /// process again), e.g. for the ranks to agree on something after training.
    pub fn take_group(&mut self) -> Option<Box<dyn Collective>> {
        self.group.take()
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    /// Evaluates `model` on `data` with this trainer's threads and loss.
    pub fn evaluate<M: Module>(
        &self,
        model: &Network<M>,
        data: &Dataset,
    ) -> Result<Evaluation, NablaError> {
        let loss = self.config.loss.unwrap_or(Loss::for_task(data.task()));
        self.pool.install(|| evaluate_with(model, data, loss))
    }

    /// The training run: per epoch, the scheduled learning rate, one pass over `splits.train`,
    /// evaluation on the validation set (if any) and the test set (if any), and the [`Hooks`].
    /// Only the validation loss chooses: with a validation set the model ends with the weights
    /// of the epoch with the lowest validation loss (whether or not early stopping ended the
    /// run); without one, early stopping is off and the last epoch's weights are kept. The
    /// plateau schedule watches the validation loss, else the training loss. The test set is
    /// evaluated and reported, never consulted. A run that diverges stops there with the last
    /// good weights and says so in [`FitReport::diverged`].
    ///
    /// ```
    /// use nabla::data::builtin;
    /// use nabla::kernels::activation::Activation;
    /// use nabla::nn::{ModelSpec, Network};
    /// use nabla::optim::{Optimizer, Sgd};
    /// use nabla::train::{Hooks, Splits, TrainConfig, Trainer};
    ///
    /// let digits = builtin::digits().unwrap();
    /// let (train, test) = (digits.subset(&(0..1500).collect::<Vec<_>>(), "train"),
    ///                      digits.subset(&(1500..1797).collect::<Vec<_>>(), "test"));
    /// let mut model = Network::from_spec(&ModelSpec::mlp(64, &[32], Activation::Relu, 10), 1).unwrap();
    /// let mut sgd = Optimizer::Sgd(Sgd::new(0.1, 0.9));
    /// let mut trainer = Trainer::new(TrainConfig::new(3, 32, 1, 1)).unwrap();
    /// let mut lines = Vec::new();
    /// let report = trainer
    ///     .fit(&mut model, &mut sgd, Splits::new(&train, &test),
    ///          Hooks::new().on_epoch(|m| lines.push(format!("epoch {}: {:.3}", m.epoch, m.test_loss.unwrap()))))
    ///     .unwrap();
    /// assert_eq!(report.history.len(), 3);
    /// assert!(report.history[2].test_accuracy.unwrap() > 0.8);
    /// assert_eq!(lines.len(), 3);
    /// ```
    pub fn fit<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        splits: Splits,
        hooks: Hooks<M>,
    ) -> Result<FitReport, NablaError> {
        self.run(model, optimizer, splits, None, hooks)
    }

    /// [`Trainer::fit`] continuing from `state` (a [`FitState`] handed to an earlier run's
    /// `on_checkpoint` hook, with `model` and `optimizer` restored to that moment). Because
    /// shuffles are per-epoch streams of the seed and dropout masks are named by the step
    /// counter, a resumed run continues bit-identically to one never interrupted.
    pub fn resume<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        splits: Splits,
        state: FitState,
        hooks: Hooks<M>,
    ) -> Result<FitReport, NablaError> {
        self.run(model, optimizer, splits, Some(state), hooks)
    }

    /// The loss of this run on `train`, checked against the model and every split.
    fn loss_for<M: Module>(&self, model: &Network<M>, splits: &Splits) -> Result<Loss, NablaError> {
        let loss = self
            .config
            .loss
            .unwrap_or(Loss::for_task(splits.train.task()));
        for data in [Some(splits.train), splits.test, splits.val]
            .into_iter()
            .flatten()
        {
            check_fits(model, data, loss)?;
        }
        if splits.train.is_empty() {
            return Err(NablaError::Usage("the training set is empty".into()));
        }
        Ok(loss)
    }

    fn run<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        splits: Splits,
        resume: Option<FitState>,
        mut hooks: Hooks<M>,
    ) -> Result<FitReport, NablaError> {
        let loss = self.loss_for(model, &splits)?;
        let epochs = self.config.epochs;
        let mut scheduler = LrScheduler::new(
            self.config.schedule,
            optimizer.learning_rate(),
            self.config.warmup,
            epochs,
        )
        .iterations_per_epoch(iterations_per_epoch(
            splits.train.len(),
            self.config.batch_size,
        ));
        // Only validation data chooses: without it there is no best epoch and no early stop.
        let keep_best = splits.val.is_some();
        let mut state = self.start_state(resume, &mut scheduler);
        let mut explosion = Explosion::new(loss, model.outputs(), &state.history);
        let (mut stopped_early, mut diverged, mut interrupted) = (false, None, false);
        for epoch in state.epoch + 1..=epochs {
            optimizer.set_learning_rate(scheduler.lr(epoch));
            let last_good = model.snapshot();
            let m = match self.epoch(
                model,
                optimizer,
                (&splits, loss),
                (epoch, &scheduler),
                &mut explosion,
                &mut hooks,
            ) {
                Err(NablaError::Diverged(why)) => {
                    model.restore(last_good)?;
                    diverged = Some(why);
                    break;
                }
                other => other?,
            };
            let Some(m) = m else {
                interrupted = true;
                break;
            };
            (hooks.on_epoch)(&m);
            // The plateau schedule watches the validation loss, else the training loss.
            scheduler.observe(epoch, m.val_loss.unwrap_or(m.train_loss));
            let monitored = m.val_loss;
            state.history.push(m);
            if let Some(monitored) = monitored.filter(|_| keep_best) {
                let improved = state.best.as_ref().is_none_or(|(b, _, _)| monitored < *b);
                if improved {
                    state.best = Some((monitored, epoch, model.snapshot()));
                }
            }
            state.epoch = epoch;
            state.steps = self.steps;
            state.scheduler = scheduler.plateau_state();
            (hooks.on_checkpoint)(&state, model, optimizer)?;
            if self.patience_ran_out(&state, epochs) {
                stopped_early = true;
                break;
            }
        }
        let mut kept_epoch = state.history.len();
        if let Some((_, epoch, weights)) = state.best {
            model.restore(weights)?;
            kept_epoch = epoch;
        }
        Ok(FitReport {
            diagnosis: diagnose(&state.history),
            history: state.history,
            kept_epoch,
            stopped_early,
            interrupted,
            diverged,
        })
    }

    /// Early stopping's verdict after `state.epoch` of `epochs`: no better validation loss for
    /// `--early-stopping` epochs (never after the last epoch).
    fn patience_ran_out(&self, state: &FitState, epochs: usize) -> bool {
        match (self.config.early_stopping, &state.best) {
            (Some(patience), Some((_, best_epoch, _))) => {
                state.epoch - best_epoch >= patience && state.epoch < epochs
            }
            _ => false,
        }
    }

    /// The state to continue from (`resume`) or a fresh one.
    fn start_state(&mut self, resume: Option<FitState>, scheduler: &mut LrScheduler) -> FitState {
        match resume {
            Some(state) => {
                self.steps = state.steps;
                scheduler.set_plateau_state(state.scheduler);
                state
            }
            None => FitState {
                epoch: 0,
                steps: self.steps,
                history: Vec::with_capacity(self.config.epochs.min(4096)),
                best: None,
                scheduler: scheduler.plateau_state(),
            },
        }
    }

    /// One epoch: training over `splits.train`, then evaluation of every other split.
    fn epoch<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        (splits, loss): (&Splits, Loss),
        (epoch, scheduler): (usize, &LrScheduler),
        explosion: &mut Explosion,
        hooks: &mut Hooks<M>,
    ) -> Result<Option<EpochMetrics>, NablaError> {
        let started = Instant::now();
        let stop = hooks.stop;
        let Some((loss_sum, correct)) = self.train_epoch(
            model,
            optimizer,
            (splits.train, loss, epoch, scheduler),
            (explosion, stop),
            &mut hooks.on_iteration,
        )?
        else {
            return Ok(None);
        };
        let seconds = started.elapsed().as_secs_f64();
        let eval = |data: Option<&Dataset>| -> Result<Option<Evaluation>, NablaError> {
            data.filter(|d| !d.is_empty())
                .map(|d| self.pool.install(|| evaluate_with(model, d, loss)))
                .transpose()
        };
        let (test, val) = (eval(splits.test)?, eval(splits.val)?);
        let n = splits.train.len() as f64;
        let reg = test.and_then(|e| e.regression);
        Ok(Some(EpochMetrics {
            epoch,
            train_loss: loss_sum / n,
            train_accuracy: (loss == Loss::CrossEntropy).then_some(correct as f64 / n),
            val_loss: val.map(|e| e.loss),
            val_accuracy: val.and_then(|e| e.accuracy),
            val_r2: val.and_then(|e| e.regression.map(|r| r.r2)),
            test_loss: test.map(|e| e.loss),
            test_accuracy: test.and_then(|e| e.accuracy),
            test_mae: reg.map(|r| r.mae),
            test_rmse: reg.map(|r| r.rmse),
            test_r2: reg.map(|r| r.r2),
            seconds,
            learning_rate: optimizer.learning_rate(),
        }))
    }

    /// One pass over `train`; returns (sum of per-sample losses, correct predictions), `None`
    /// when `stop` was set (checked after every step), or a [`NablaError::Diverged`] at the
    /// first step whose loss is not finite or has exploded.
    fn train_epoch<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        (train, loss, epoch, scheduler): (&Dataset, Loss, usize, &LrScheduler),
        (explosion, stop): (&mut Explosion, Option<&std::sync::atomic::AtomicBool>),
        on_iteration: &mut dyn FnMut(&IterationStats),
    ) -> Result<Option<(f64, usize)>, NablaError> {
        let batch_size = self.config.batch_size;
        self.epoch = epoch as u64;
        self.order.clear();
        self.order.extend(0..train.len());
        let mut rng = rng::sub_stream(self.config.seed, Stream::Shuffle, epoch as u64);
        rng::shuffle(&mut rng, &mut self.order);

        let iterations = iterations_per_epoch(train.len(), batch_size);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        let mut last_finite: Option<f64> = None;
        let order = std::mem::take(&mut self.order);
        let mut run = || -> Result<bool, NablaError> {
            for (iteration, batch) in order.chunks(batch_size).enumerate() {
                // The warm-up rises at every iteration; afterwards the rate is the epoch's.
                optimizer.set_learning_rate(scheduler.lr_at(epoch, iteration + 1));
                let stats = self.step_or_stop(model, optimizer, (train, loss), batch, stop)?;
                let at = (epoch, iteration + 1, iterations);
                if !stats.loss.is_finite() || !stats.finite_gradient {
                    return Err(diverged(&stats, at, last_finite, optimizer.learning_rate()));
                }
                if let Some(limit) = explosion.check(stats.loss) {
                    return Err(exploded(stats.loss, limit, at, optimizer.learning_rate()));
                }
                last_finite = Some(stats.loss);
                loss_sum += stats.loss * batch.len() as f64;
                correct += stats.correct;
                on_iteration(&IterationStats {
                    epoch,
                    iteration: iteration + 1,
                    iterations,
                    samples: batch.len(),
                    loss: stats.loss,
                });
                if self.stop_requested(stop)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let finished = run();
        self.order = order;
        let finished = finished?;
        // Sharded steps left each rank's optimizer state current for its own chunks only.
        self.sync_state(optimizer)?;
        Ok(finished.then_some((loss_sum, correct)))
    }
}

impl Trainer {
    /// Whether the run should stop after this step: `stop` set here, or, in a distributed run,
    /// on any rank (the ranks agree, so all stop after the same step).
    fn stop_requested(
        &mut self,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, NablaError> {
        let Some(stop) = stop else {
            return Ok(false);
        };
        if let Some(agreed) = self.stop_agreed.take() {
            return Ok(agreed);
        }
        let here = stop.load(std::sync::atomic::Ordering::Relaxed);
        match self.group.as_deref_mut() {
            Some(group) => Ok(!crate::dist::all_agree(group, !here)?),
            None => Ok(here),
        }
    }
}

/// The error for a step whose loss or gradient was not finite, at (epoch, iteration, of).
fn diverged(
    stats: &StepStats,
    (epoch, iteration, iterations): (usize, usize, usize),
    last_finite: Option<f64>,
    lr: f64,
) -> NablaError {
    let what = if stats.loss.is_finite() {
        "a gradient became NaN or infinite".to_string()
    } else {
        format!("the loss became {}", stats.loss)
    };
    let last = last_finite.map_or("none".to_string(), |l: f64| {
        if l.abs() < 1e6 {
            format!("{l:.4}")
        } else {
            format!("{l:.3e}")
        }
    });
    NablaError::Diverged(
        Message::new()
            .text(format!(
                "training diverged: {what} at epoch {epoch}, iteration {iteration}/{iterations} (last finite loss {last}); no weights were updated with it. Try a lower "
            ))
            .setting(Setting::LearningRate)
            .text(", e.g. ")
            .text(format!("{} (now {lr}), or ", lower_lr(lr)))
            .value(Setting::ClipGradNorm, "1"),
    )
}

/// A concrete lower learning rate to advise: a tenth of `lr`, rounded to one significant digit.
pub fn lower_lr(lr: f64) -> f64 {
    let tenth = lr / 10.0;
    let scale = 10f64.powf(tenth.log10().floor());
    let rounded = (tenth / scale).round() * scale;
    // Printing goes through f64's shortest round-trip form: keep it short.
    format!("{rounded:.1e}").parse().unwrap_or(tenth)
}

/// The error for a step whose loss, though finite, rose past `limit`.
fn exploded(
    loss: f64,
    limit: (f64, String),
    (epoch, iteration, iterations): (usize, usize, usize),
    lr: f64,
) -> NablaError {
    NablaError::Diverged(
        Message::new()
            .text(format!(
                "training diverged: the loss reached {} at epoch {epoch}, iteration {iteration}/{iterations}, above {:.4} ({}); the weights from before this epoch were kept. Try a lower ",
                short(loss),
                limit.0,
                limit.1
            ))
            .setting(Setting::LearningRate)
            .text(format!(", e.g. {} (now {lr}), or ", lower_lr(lr)))
            .value(Setting::ClipGradNorm, "1"),
    )
}

/// `0.1234` or, for large or tiny values, `6.021e33`.
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The finite-explosion guard: a loss far above where training started means the steps are
/// too large. The start is the loss of the run's first iteration (measured before any update),
/// at least ln C for cross-entropy over C classes (where an untrained network sits) and at
/// least 1 for the MSE of standardised targets (predicting their mean); a loss above 10 × the
/// start has exploded.
#[derive(Clone, Debug)]
pub struct Explosion {
    /// The starting loss, once measured.
    start: Option<f64>,
    /// The least the start is taken to be: ln C, or 1.
    floor: f64,
    /// Cross-entropy (for the wording).
    classes: bool,
}

impl Explosion {
    /// The guard for `loss` with `outputs` network outputs, continuing after `history`.
    pub fn new(loss: Loss, outputs: usize, history: &[EpochMetrics]) -> Self {
        let classes = loss == Loss::CrossEntropy;
        let floor = if classes {
            (outputs.max(2) as f64).ln()
        } else {
            1.0
        };
        Self {
            start: history.first().map(|m| m.train_loss.max(floor)),
            floor,
            classes,
        }
    }

    /// `Some((limit, why))` when `loss` has exploded.
    pub fn check(&mut self, loss: f64) -> Option<(f64, String)> {
        let Some(start) = self.start else {
            self.start = Some(loss.max(self.floor));
            return None;
        };
        let limit = 10.0 * start;
        (loss > limit).then(|| {
            let why = if self.classes {
                format!(
                    "10 × the starting loss {start:.4}; cross-entropy starts near ln of the class count, {:.4}",
                    self.floor
                )
            } else {
                format!("10 × the starting loss {start:.4}")
            };
            (limit, why)
        })
    }
}

impl Trainer {
    /// One iteration of mini-batch SGD on the samples `batch` of `data`, with the usual loss
    /// for the data's task (see [`Trainer::step_with`]).
    pub fn step<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        data: &Dataset,
        batch: &[usize],
    ) -> Result<StepStats, NablaError> {
        let loss = self.config.loss.unwrap_or(Loss::for_task(data.task()));
        self.step_with(model, optimizer, data, loss, batch)
    }

    /// One iteration of mini-batch SGD minimising `loss` on the samples `batch` of `data`:
    /// forward and backward of each micro-batch (in parallel when there are several threads),
    /// then one optimizer step that sums the micro-batch gradients in a fixed order. Allocates
    /// nothing once the buffers have grown to the batch's size.
    pub fn step_with<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        data: &Dataset,
        loss: Loss,
        batch: &[usize],
    ) -> Result<StepStats, NablaError> {
        self.step_or_stop(model, optimizer, (data, loss), batch, None)
    }

    /// [`Trainer::step_with`]; a distributed step also tells the ranks whether `stop` is set
    /// here (and [`Trainer::stop_requested`] then reads their agreement).
    fn step_or_stop<M: Module>(
        &mut self,
        model: &mut Network<M>,
        optimizer: &mut Optimizer,
        (data, loss): (&Dataset, Loss),
        batch: &[usize],
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<StepStats, NablaError> {
        if batch.is_empty() {
            return Ok(StepStats {
                loss: 0.0,
                correct: 0,
                finite_gradient: true,
            });
        }
        // Subnormals flushed on this thread for the step only, as on the pool's threads.
        let _ftz = crate::simd::ftz::Scope::new();
        if self.group.is_some() {
            return self.step_distributed((model, optimizer), (data, loss), batch, stop);
        }
        let (mine, k) = self.share_of(batch.len(), 0, 1, model);
        self.micro_batches(model, data, loss, batch, mine.clone())?;
        let outs = &self.outs[..k];
        let loss_sum: f64 = outs.iter().map(|o| o.loss_sum).sum();
        let mut stats = StepStats {
            loss: loss_sum / batch.len() as f64,
            correct: outs.iter().map(|o| o.correct).sum(),
            finite_gradient: true,
        };
        if !stats.loss.is_finite() {
            return Ok(stats);
        }
        model.fold_batch_stats(outs.iter().map(|o| &o.stats));
        let grads = &self.grads[..mine.len()];
        stats.finite_gradient = apply(&self.config, &self.pool, model, optimizer, grads);
        Ok(stats)
    }

    /// The gradient groups `rank` of `size` ranks computes of a mini-batch of `batch` rows
    /// (all of them in one process) and how many micro-batches they hold, with room made for
    /// them.
    pub(super) fn share_of<M: Module>(
        &mut self,
        batch: usize,
        rank: usize,
        size: usize,
        model: &Network<M>,
    ) -> (std::ops::Range<usize>, usize) {
        let mine = crate::dist::share(groups(batch), rank, size);
        let k = rank_share(batch, rank, size).len();
        while self.outs.len() < k {
            self.outs.push(MicroOut {
                stats: BatchStats::default(),
                loss_sum: 0.0,
                correct: 0,
            });
        }
        while self.workers.len() < mine.len() {
            self.workers.push(Worker {
                ws: Workspace::new(),
                targets: Targets::default(),
                scratch: Vec::new(),
            });
            self.grads.push(Grads::zeros_like(model.params()));
        }
        (mine, k)
    }

    /// Forward and backward of the micro-batches of the gradient groups `mine` of `batch` (all
    /// of them in one process): see [`Compute::run`].
    pub(super) fn micro_batches<M: Module>(
        &mut self,
        model: &Network<M>,
        data: &Dataset,
        loss: Loss,
        batch: &[usize],
        mine: std::ops::Range<usize>,
    ) -> Result<(), NablaError> {
        self.compute(mine.len())
            .run(model, (data, loss), batch, mine.start, None)
    }

    /// The trainer's buffers for a step's first `groups` gradient groups, borrowed apart from
    /// the rest of it (so a distributed step can run them on the pool while the calling thread
    /// talks to the other ranks); counts the step.
    pub(super) fn compute(&mut self, groups: usize) -> Compute<'_> {
        let step_index = self.steps;
        self.steps += 1;
        Compute {
            workers: &mut self.workers[..groups],
            grads: &mut self.grads[..groups],
            outs: &mut self.outs,
            config: &self.config,
            pool: &self.pool,
            step_index,
            epoch: self.epoch,
        }
    }
}

/// A step's micro-batch work: the gradient groups' workers, gradient buffers and outputs, and
/// what names the step's random draws.
pub(super) struct Compute<'a> {
    workers: &'a mut [Worker],
    grads: &'a mut [Grads],
    outs: &'a mut [MicroOut],
    config: &'a TrainConfig,
    /// The trainer's threads.
    pub(super) pool: &'a rayon::ThreadPool,
    step_index: u64,
    epoch: u64,
}

/// Called with a parameter's index when every group of the step has its gradient final.
pub(super) type Ready<'r> = &'r (dyn Fn(usize) + Sync);

impl Compute<'_> {
    /// Forward and backward of the micro-batches of this rank's gradient groups, the first
    /// being group `first_group` of `batch`: the groups in parallel, each group's micro-batches
    /// in order on one thread, accumulating into the group's gradients (see
    /// [`super::micro_batches_per_group`]). With `ready`, each group reports when its last
    /// micro-batch's backward has made a parameter's gradient final (see
    /// [`Tape::backward_notify`]).
    pub(super) fn run<M: Module>(
        self,
        model: &Network<M>,
        (data, loss): (&Dataset, Loss),
        batch: &[usize],
        first_group: usize,
        ready: Option<Ready>,
    ) -> Result<(), NablaError> {
        let total = batch.len();
        let groups = self.workers.len();
        let (size, per) = (micro_batch_rows(total), micro_batches_per_group(total));
        // As `rank_share`: a rank with no group (fewer groups than ranks) starts at the end.
        let k = micro_batches(total);
        let (first, end) = (
            (first_group * per).min(k),
            ((first_group + groups) * per).min(k),
        );
        let outs = &mut self.outs[..end - first];
        let rows = &batch[(first * size).min(total)..(end * size).min(total)];
        let (seed, step_index) = (self.config.seed, self.step_index);
        let augment = self.config.augment.as_ref().map(|a| (a, self.epoch));
        let run = |(gi, ((w, g), (outs, rows))): (usize, GroupJob)| {
            let last = outs.len().saturating_sub(1);
            for (j, (out, chunk)) in outs.iter_mut().zip(rows.chunks(size)).enumerate() {
                // Each micro-batch's dropout masks come from its own stream, named by the step
                // and the micro-batch's position: the same masks whichever thread runs it.
                let i = first + gi * per + j;
                let mut rng = rng::sub_stream(seed, Stream::Dropout, (step_index << 12) | i as u64);
                let step = MicroStep {
                    rows: chunk,
                    batch_rows: total,
                    augment,
                    add: j > 0,
                    ready: ready.filter(|_| j == last),
                };
                micro_step(model, (data, loss), step, (w, out, g), &mut rng)?;
            }
            Ok::<(), NablaError>(())
        };
        if groups > 1 && self.config.threads > 1 {
            self.pool.install(|| {
                (self.workers.par_iter_mut().zip(self.grads.par_iter_mut()))
                    .zip(outs.par_chunks_mut(per).zip(rows.par_chunks(per * size)))
                    .enumerate()
                    .try_for_each(run)
            })
        } else {
            (self.workers.iter_mut().zip(self.grads.iter_mut()))
                .zip(outs.chunks_mut(per).zip(rows.chunks(per * size)))
                .enumerate()
                .try_for_each(run)
        }
    }
}

/// One gradient group's share of a step: its worker and gradients, its micro-batches' outputs
/// and rows.
type GroupJob<'a> = (
    (&'a mut Worker, &'a mut Grads),
    (&'a mut [MicroOut], &'a [usize]),
);

/// The optimizer step over the micro-batch gradients `grads` (summed in order, clipped when
/// configured); false when a gradient chunk was not finite.
pub(super) fn apply<M: Module>(
    config: &TrainConfig,
    pool: &rayon::ThreadPool,
    model: &mut Network<M>,
    optimizer: &mut Optimizer,
    grads: &[Grads],
) -> bool {
    // The optimizer sums the micro-batch gradients chunk by chunk as it updates.
    let scale = match config.clip_grad_norm {
        Some(max) => {
            let norm = global_norm(grads);
            if norm > max {
                (max / (norm + 1e-6)) as f32
            } else {
                1.0
            }
        }
        None => 1.0,
    };
    if config.threads > 1 {
        pool.install(|| optimizer.step_sum(model.params_mut(), grads, true, scale))
    } else {
        optimizer.step_sum(model.params_mut(), grads, false, scale)
    }
}

/// One finished iteration, as handed to the `on_iteration` hook (see [`Hooks`]).
#[derive(Clone, Copy, Debug)]
pub struct IterationStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Iteration within the epoch, from 1.
    pub iteration: usize,
    /// Iterations in the epoch.
    pub iterations: usize,
    /// Samples in this mini-batch.
    pub samples: usize,
    /// Mean loss over the mini-batch (before the update).
    pub loss: f64,
}

/// What one training step measured.
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    /// Mean loss over the mini-batch (before the update).
    pub loss: f64,
    /// Samples of the mini-batch classified correctly (before the update).
    pub correct: usize,
    /// False when the gradient held a NaN or an infinity (the update skipped those values).
    pub finite_gradient: bool,
}

/// One micro-batch of a step: its samples, the mini-batch's size, the augmentation with the
/// epoch that names its draws, and whether its gradients add to those of the group's earlier
/// micro-batches.
#[derive(Clone, Copy)]
struct MicroStep<'a> {
    rows: &'a [usize],
    batch_rows: usize,
    augment: Option<(&'a Augmenter, u64)>,
    add: bool,
    /// Reports parameters whose gradients are final (the group's last micro-batch only).
    ready: Option<Ready<'a>>,
}

/// Forward and backward of one micro-batch with its group's worker, into its own outputs and
/// (stored, or added when `step.add`) its group's gradients.
fn micro_step<M: Module>(
    model: &Network<M>,
    (data, loss): (&Dataset, Loss),
    step: MicroStep,
    (w, out, grads): (&mut Worker, &mut MicroOut, &mut Grads),
    rng: &mut ChaCha8Rng,
) -> Result<(), NablaError> {
    let (chunk, batch_rows) = (step.rows, step.batch_rows);
    let mut tape = Tape::new(model.params(), &mut w.ws);
    let scratch = &mut w.scratch;
    let x = tape.input_with(chunk.len(), data.dim(), |buf| {
        data.gather(chunk, buf);
        if let Some((augment, epoch)) = step.augment {
            augment.apply(epoch, chunk, buf, scratch);
        }
    });
    let y = model.forward_train(&mut tape, x, rng, &mut out.stats)?;
    let l = loss.record(&mut tape, y, data, chunk, &mut w.targets)?;
    // The mini-batch loss is the mean over all its rows: weight this micro-batch's mean by its
    // share of the rows, and the summed gradients are exactly those of the mini-batch mean.
    let share = tape.scale(l, chunk.len() as f32 / batch_rows as f32);
    match step.ready {
        Some(ready) => {
            tape.backward_notify(share, grads, step.add, &mut |id| ready(id.index()))?;
        }
        None if step.add => tape.backward_add(share, grads)?,
        None => tape.backward(share, grads)?,
    }
    out.loss_sum = tape.value(l).data()[0] as f64 * chunk.len() as f64;
    out.correct = loss.correct(tape.value(y).data(), &w.targets);
    Ok(())
}

fn check_fits<M: Module>(model: &Network<M>, data: &Dataset, loss: Loss) -> Result<(), NablaError> {
    loss.check(model.outputs(), data)?;
    if data.dim() != model.inputs() {
        return Err(NablaError::Usage(format!(
            "{}: samples have {} features, the model takes {}",
            data.name(),
            data.dim(),
            model.inputs()
        )));
    }
    Ok(())
}

/// Loss and accuracy (classification) or MAE, RMSE and R² (regression) of `model` on `data` with
/// the usual loss for its task, in fixed chunks of [`super::eval_chunk_rows`] rows run in parallel on the
/// current rayon pool and summed in order.
pub fn evaluate<M: Module>(model: &Network<M>, data: &Dataset) -> Result<Evaluation, NablaError> {
    evaluate_with(model, data, Loss::for_task(data.task()))
}

/// [`evaluate`] with the loss `loss`.
pub fn evaluate_with<M: Module>(
    model: &Network<M>,
    data: &Dataset,
    loss: Loss,
) -> Result<Evaluation, NablaError> {
    check_fits(model, data, loss)?;
    let regression = loss == Loss::Mse;
    if data.is_empty() {
        return Ok(Evaluation {
            loss: f64::NAN,
            accuracy: (!regression).then_some(f64::NAN),
            regression: regression.then_some(RegressionMetrics {
                mae: f64::NAN,
                rmse: f64::NAN,
                r2: f64::NAN,
            }),
        });
    }
    let (_, scale) = data.target_scaling();
    // Targets in original units are center + scale · t; errors are scale · (ŷ − t).
    let mean_t = data.targets().iter().map(|&t| f64::from(t)).sum::<f64>() / data.len() as f64;
    let indices: Vec<usize> = (0..data.len()).collect();
    let rows = super::eval_chunk_rows(model, data)?;
    // A few jobs per thread, each reusing one workspace over its run of chunks.
    let per_job = data.len().div_ceil(rows * 2 * rayon::current_num_threads());
    let parts: Vec<[f64; 4]> = indices
        .par_chunks(rows)
        .with_min_len(per_job.max(1))
        .map_init(
            || (Workspace::new(), Targets::default()),
            |(ws, targets), chunk| -> Result<[f64; 4], NablaError> {
                let mut tape = Tape::new(model.params(), ws).without_grad();
                let x = tape.input_with(chunk.len(), data.dim(), |buf| data.gather(chunk, buf));
                let out = model.forward(&mut tape, x)?;
                let l = loss.record(&mut tape, out, data, chunk, targets)?;
                let value = tape.value(l).data()[0];
                Ok(loss.chunk_sums(value, tape.value(out).data(), targets, (mean_t, scale)))
            },
        )
        .collect::<Result<_, _>>()?;
    let n = data.len() as f64;
    let total = |k: usize| parts.iter().map(|p| p[k]).sum::<f64>();
    Ok(Evaluation {
        loss: total(0) / n,
        accuracy: (!regression).then(|| total(1) / n),
        regression: regression.then(|| {
            let (sae, sse, sst) = (total(1), total(2), total(3));
            RegressionMetrics {
                mae: sae / n,
                rmse: (sse / n).sqrt(),
                r2: if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN },
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_names_every_setting() {
        let c = TrainConfig::default()
            .epochs(30)
            .batch_size(16)
            .seed(7)
            .threads(2)
            .warmup(1)
            .early_stopping(5)
            .clip_grad_norm(1.0)
            .schedule(Schedule::Cosine { min_lr: 0.0 });
        let old = TrainConfig::new(30, 16, 7, 2);
        assert_eq!(
            (c.epochs, c.batch_size, c.seed, c.threads),
            (old.epochs, old.batch_size, old.seed, old.threads)
        );
        assert_eq!(
            (c.warmup, c.early_stopping, c.clip_grad_norm),
            (1, Some(5), Some(1.0))
        );
        assert_eq!(c.schedule, Schedule::Cosine { min_lr: 0.0 });
        let d = TrainConfig::default();
        assert_eq!((d.epochs, d.batch_size, d.seed, d.threads), (10, 32, 42, 1));
    }

    #[test]
    fn a_finite_explosion_is_caught_against_where_the_loss_starts() {
        // Cross-entropy over 10 classes starts near ln 10 ≈ 2.30: the limit is 23.03.
        let mut ce = Explosion::new(Loss::CrossEntropy, 10, &[]);
        assert!(ce.check(1.9).is_none() && ce.check(20.0).is_none());
        let (limit, why) = ce.check(164.0).unwrap();
        assert!((limit - 10.0 * 10f64.ln()).abs() < 1e-12, "{limit}");
        assert!(why.contains("ln"), "{why}");
        // Unscaled inputs start far above ln C: the first iteration sets the start.
        let mut raw = Explosion::new(Loss::CrossEntropy, 2, &[]);
        assert!(raw.check(240.0).is_none() && raw.check(2000.0).is_none());
        assert!(raw.check(2401.0).is_some());
        // Regression: 10 × the first iteration's loss (at least 1).
        let mut mse = Explosion::new(Loss::Mse, 1, &[]);
        assert!(mse.check(2.0).is_none() && mse.check(19.0).is_none());
        assert_eq!(mse.check(21.0).unwrap().0, 20.0);
    }

    #[test]
    fn the_advised_rate_is_a_round_tenth() {
        assert_eq!(lower_lr(50.0), 5.0);
        assert_eq!(lower_lr(0.001), 0.0001);
        assert_eq!(lower_lr(0.03), 0.003);
        assert_eq!(lower_lr(1e6), 1e5);
    }
}
