//! The settings of one training run, typed, in one place: [`RunConfig`]. Every field is a
//! `nabla train` flag (same name, snake_case), so a run folder's `config.toml`, the model file's
//! `training` metadata, the metrics file and a checkpoint all hold the same serialized struct.
//!
//! A field the user did not set is `None`; [`RunConfig::resolve`] is the only place that holds
//! the defaults (the epoch rule needs the training-set size, so it runs once the data is loaded).
//! Helpers build the library objects from a resolved config: [`RunConfig::optimizer`],
//! [`RunConfig::model_spec`], [`RunConfig::network`], [`RunConfig::train_config`] and
//! [`RunConfig::load_data`].
//!
//! This module owns no argument parsing, no printing and no file format: the CLI maps its flags
//! onto a `RunConfig` and writes it out.
//!
//! ```
//! use nabla::config::RunConfig;
//! let config = RunConfig { epochs: Some(3), ..RunConfig::default() }.resolve(1000);
//! assert_eq!(config.epochs, Some(3));
//! assert_eq!(config.batch_size, Some(32));
//! assert_eq!(config.lr, Some(0.001)); // Adam with ReLU
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::augment::{Augment, Augmenter};
use crate::data::csv::CsvOptions;
use crate::data::{self, Dataset, Impute, Preprocess, Scaling, TableOptions};
use crate::error::{Message, NablaError, Setting};
use crate::kernels::activation::Activation;
use crate::nn::{ImageShape, Init, ModelSpec, Network};
use crate::optim::{Adagrad, Adam, Optimizer, RmsProp, Schedule, Sgd};
use crate::task::Task;
use crate::train::{TrainConfig, iterations_per_epoch};

/// The defaults [`RunConfig::resolve`] fills in (also shown by `nabla train --help`).
pub mod defaults {
    /// Hidden layer sizes.
    pub const HIDDEN: &str = "256,128";
    /// Samples per mini-batch.
    pub const BATCH_SIZE: u32 = 32;
    /// Momentum of sgd.
    pub const MOMENTUM: f64 = 0.9;
    /// Epochs between decays of the step schedule.
    pub const STEP_SIZE: u32 = 10;
    /// Final learning rate of the cosine schedule.
    pub const MIN_LR: f64 = 0.0;
    /// Epochs without improvement before the plateau schedule reduces the rate.
    pub const PLATEAU_PATIENCE: usize = 5;
    /// Factor the plateau schedule multiplies the rate by.
    pub const PLATEAU_FACTOR: f64 = 0.1;
    /// Linear warm-up epochs.
    pub const WARMUP: usize = 0;
    /// Dropout probability.
    pub const DROPOUT: f64 = 0.0;
    /// Fraction held out as the test set.
    pub const TEST_SPLIT: f64 = 0.2;
    /// Fraction of the training part held out for validation.
    pub const VAL_SPLIT: f64 = 0.0;
    /// Seed of initialisation, split and shuffling.
    pub const SEED: u64 = 42;
    /// Epochs when the data is large enough (see [`super::RunConfig::resolve`]).
    pub const EPOCHS: usize = 30;
    /// Most epochs the small-data rule picks.
    pub const MAX_EPOCHS: usize = 200;
    /// Fewest iterations the small-data rule aims for.
    pub const MIN_ITERATIONS: usize = 1000;
    /// Small data: fewer training rows than this (after `limit_train`, before any validation
    /// split). A run that sets neither `epochs` nor `val_split` on small data holds out
    /// [`AUTO_VAL_SPLIT`] of its training rows for validation, stops early after
    /// [`AUTO_PATIENCE`] epochs without a lower validation loss and keeps the best epoch's
    /// weights, with weight decay [`TINY_DATA_WEIGHT_DECAY`] under [`TINY_DATA_ROWS`] rows and
    /// [`SMALL_DATA_WEIGHT_DECAY`] above (unless set; adamw keeps its own),
    /// for at most enough epochs for [`SMALL_DATA_ITERATIONS`] iterations (clamped to
    /// [`SMALL_DATA_MIN_EPOCHS`]..=[`SMALL_DATA_MAX_EPOCHS`]).
    pub const SMALL_DATA_ROWS: usize = 10_000;
    /// Fraction of the training rows the automatic validation split holds out.
    pub const AUTO_VAL_SPLIT: f64 = 0.2;
    /// Early-stopping patience of the small-data rule, in epochs.
    pub const AUTO_PATIENCE: usize = 20;
    /// Weight decay of the small-data rule below [`TINY_DATA_ROWS`] training rows ...
    pub const TINY_DATA_WEIGHT_DECAY: f64 = 0.01;
    /// ... the row count below which it applies ...
    pub const TINY_DATA_ROWS: usize = 1_000;
    /// ... and from there up to [`SMALL_DATA_ROWS`] (less data needs more regularisation).
    pub const SMALL_DATA_WEIGHT_DECAY: f64 = 0.001;
    /// The small-data rule's most epochs: enough for this many iterations (early stopping
    /// usually ends the run long before) ...
    pub const SMALL_DATA_ITERATIONS: usize = 3000;
    /// ... but at least this many epochs ...
    pub const SMALL_DATA_MIN_EPOCHS: usize = 100;
    /// ... and at most this many.
    pub const SMALL_DATA_MAX_EPOCHS: usize = 500;
}

/// Why a run's validation split was carved automatically (no `val_split` was given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoValidation {
    /// Small data and neither `epochs` nor `val_split` set: the small-data rule
    /// ([`defaults::SMALL_DATA_ROWS`]).
    SmallData,
    /// Early stopping needs data to choose the epoch, and only validation data may choose.
    EarlyStopping,
}

/// Activation after each hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationKind {
    /// max(0, x).
    #[default]
    Relu,
    /// 1/(1+e^-x).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// x for x>0, 0.01x otherwise.
    LeakyRelu,
    /// x·Φ(x).
    Gelu,
}

impl ActivationKind {
    /// The kernel this names.
    pub fn activation(self) -> Activation {
        match self {
            ActivationKind::Relu => Activation::Relu,
            ActivationKind::Sigmoid => Activation::Sigmoid,
            ActivationKind::Tanh => Activation::Tanh,
            ActivationKind::LeakyRelu => Activation::LeakyRelu { slope: 0.01 },
            ActivationKind::Gelu => Activation::Gelu,
        }
    }
}

/// The optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with momentum.
    Sgd,
    /// Adam.
    #[default]
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    /// RMSprop.
    Rmsprop,
    /// Adagrad.
    Adagrad,
}

/// The learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// The same rate every epoch.
    #[default]
    Constant,
    /// × gamma every step_size epochs.
    Step,
    /// × gamma every epoch.
    Exponential,
    /// Cosine annealing down to min_lr.
    Cosine,
    /// × plateau_factor when the monitored loss stalls for plateau_patience epochs.
    Plateau,
}

/// Missing-value handling of CSV data (`None`: refuse the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImputeKind {
    /// The training split's mean (text: most frequent category).
    Mean,
    /// The training split's median (text: most frequent category).
    Median,
    /// Drop rows with a missing cell.
    DropRows,
}

/// Input scaling (`None`: standard for CSV, pixels / 255 for IDX images).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleKind {
    /// (x − mean) / std, fitted on the training split.
    Standard,
    /// (x − min) / (max − min), fitted on the training split.
    Minmax,
    /// Values as they are.
    None,
}

impl ScaleKind {
    fn scaling(self) -> Scaling {
        match self {
            ScaleKind::Standard => Scaling::Standard,
            ScaleKind::Minmax => Scaling::MinMax,
            ScaleKind::None => Scaling::None,
        }
    }
}

/// Every setting of a training run. `None` means "not set": [`RunConfig::resolve`] fills it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Training data: a CSV file or a folder of IDX files; `None`: the built-in digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// A separate CSV test set with the columns of `data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_data: Option<PathBuf>,
    /// CSV: the column to predict; `None`: the last column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// CSV: the input columns; `None`: all but the target and `drop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// CSV: columns to leave out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
    /// CSV: the field delimiter; `None`: detected from the header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// Classification or regression; `None`: detected from the target column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// CSV: what to do with missing cells; `None`: refuse the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impute: Option<ImputeKind>,
    /// Input scaling; `None`: standard for CSV, pixels / 255 for IDX images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleKind>,
    /// Hidden layer sizes [default: 256, 128].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// The whole layer stack in words (`conv 32 3 pad 1, relu, maxpool 2, flatten, dense 10`;
    /// see [`crate::nn::layers_text`]); when set, `hidden`, `activation`, `dropout` and
    /// `batch_norm` are not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
    /// The shape `CxHxW` of one sample read as an image (CSV rows; IDX images keep their own
    /// height and width).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<String>,
    /// Image augmentation of the training samples, drawn per sample and epoch
    /// (`shift=2,rotate=10,flip`, see [`crate::data::augment`]); `None` or `none`: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<String>,
    /// Activation after each hidden layer [default: relu].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationKind>,
    /// Optimizer [default: adam].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: sgd 0.05; adam 0.001, 0.01 with sigmoid/tanh; adamw and rmsprop
    /// 0.001; adagrad 0.01]. Model files before RunConfig called it `learning_rate`.
    #[serde(skip_serializing_if = "Option::is_none", alias = "learning_rate")]
    pub lr: Option<f64>,
    /// Momentum of sgd, in [0, 1) [default: 0.9].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Samples per mini-batch [default: 32].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Passes over the training data [default: 30, more for small data so training runs at least
    /// 1,000 iterations, at most 200 epochs].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Nesterov momentum (sgd).
    pub nesterov: bool,
    /// Weight decay [default: 0; adamw 0.01].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule [default: constant].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleKind>,
    /// Epochs between decays of the step schedule [default: 10].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<usize>,
    /// Decay factor of the step (default 0.1) and exponential (default 0.95) schedules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// Final learning rate of the cosine schedule [default: 0].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    /// Epochs without improvement before the plateau schedule cuts the rate [default: 5].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plateau_patience: Option<usize>,
    /// Factor of the plateau schedule [default: 0.1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plateau_factor: Option<f64>,
    /// Linear warm-up epochs before the schedule [default: 0].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<usize>,
    /// Dropout probability after each hidden activation [default: 0].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// Batch normalisation after each hidden linear layer.
    pub batch_norm: bool,
    /// Global gradient-norm limit; `None`: no clipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Weight initialiser; `None`: he-normal for the ReLU family, glorot-uniform otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
    /// Patience of early stopping in epochs; `None`: train every epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<usize>,
    /// Train on a seeded, stratified subset of this many samples; `None`: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_train: Option<usize>,
    /// Fraction held out as the test set when the data has none [default: 0.2].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_split: Option<f64>,
    /// Fraction of the training part held out for validation [default: 0].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_split: Option<f64>,
    /// Seed of initialisation, split and shuffling [default: 42].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Worker threads [default: all cores].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Where the run writes, not what it computes: left out of the model file's metadata.
    #[serde(flatten)]
    pub output: Output,
}

/// The output settings of a run: where its model, checkpoints and reports go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Output {
    /// Save the trained model to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save: Option<PathBuf>,
    /// Save a checkpoint after every epoch into this folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Write the metrics as JSON to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_out: Option<PathBuf>,
    /// Name of the run folder under runs/.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The run folder itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// No run folder.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_save: bool,
    /// No progress bar.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
    /// Print every iteration's loss.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verbose: bool,
}

/// Training, optional validation and test sets, as a [`RunConfig`] asks for them.
pub struct RunData {
    /// The training set.
    pub train: Dataset,
    /// The validation set, with `val_split` above 0.
    pub val: Option<Dataset>,
    /// The test set.
    pub test: Dataset,
    /// Warnings for the user (e.g. classes too small to split).
    pub warnings: Vec<String>,
    /// How the data's rows became network inputs (saved with the model).
    pub preprocess: Preprocess,
    /// Set when no `val_split` was given and the validation split was carved anyway, and why
    /// (its fraction is [`defaults::AUTO_VAL_SPLIT`]).
    pub auto_validation: Option<AutoValidation>,
    /// The image each sample is, when the data says (IDX: `1 × rows × columns`).
    pub image: Option<ImageShape>,
}

impl RunConfig {
    /// Every unset field filled with its default; `train_samples` (after `limit_train`) sets
    /// the epoch count: 30, or enough for 1,000 iterations on small data (at most 200).
    /// Idempotent: a resolved config resolves to itself.
    pub fn resolve(&self, train_samples: usize) -> RunConfig {
        use defaults as d;
        let mut c = self.clone();
        let activation = *c.activation.get_or_insert_default();
        let optimizer = *c.optimizer.get_or_insert_default();
        let schedule = *c.schedule.get_or_insert_default();
        c.hidden.get_or_insert_with(|| vec![256, 128]);
        let saturating = matches!(activation, ActivationKind::Sigmoid | ActivationKind::Tanh);
        c.lr.get_or_insert(match optimizer {
            OptimizerKind::Sgd => 0.05,
            OptimizerKind::Adam if saturating => 0.01,
            OptimizerKind::Adam | OptimizerKind::Adamw | OptimizerKind::Rmsprop => 0.001,
            OptimizerKind::Adagrad => 0.01,
        });
        c.weight_decay.get_or_insert(match optimizer {
            OptimizerKind::Adamw => 0.01,
            _ => 0.0,
        });
        c.momentum.get_or_insert(d::MOMENTUM);
        let batch_size = *c.batch_size.get_or_insert(d::BATCH_SIZE as usize);
        c.epochs.get_or_insert_with(|| {
            let iterations = iterations_per_epoch(train_samples, batch_size).max(1);
            d::MIN_ITERATIONS
                .div_ceil(iterations)
                .clamp(d::EPOCHS, d::MAX_EPOCHS)
        });
        match schedule {
            ScheduleKind::Step => c.gamma.get_or_insert(0.1),
            ScheduleKind::Exponential => c.gamma.get_or_insert(0.95),
            _ => &mut 0.0,
        };
        c.step_size.get_or_insert(d::STEP_SIZE as usize);
        c.min_lr.get_or_insert(d::MIN_LR);
        c.plateau_patience.get_or_insert(d::PLATEAU_PATIENCE);
        c.plateau_factor.get_or_insert(d::PLATEAU_FACTOR);
        c.warmup.get_or_insert(d::WARMUP);
        c.dropout.get_or_insert(d::DROPOUT);
        c.test_split.get_or_insert(d::TEST_SPLIT);
        c.val_split.get_or_insert(d::VAL_SPLIT);
        c.seed.get_or_insert(d::SEED);
        c.threads.get_or_insert_with(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        c
    }

    /// [`RunConfig::resolve`] for the data loaded by [`RunConfig::load_data`]: when that data
    /// carved its validation split automatically, `val_split` records the fraction, and the
    /// small-data rule sets the most epochs and adds early stopping
    /// ([`defaults::AUTO_PATIENCE`]) and weight decay (by size, see
    /// [`defaults::SMALL_DATA_ROWS`]) unless they were set. The resolved config
    /// repeats the run exactly when read back.
    pub fn resolve_for(&self, data: &RunData) -> RunConfig {
        let mut c = self.clone();
        if let Some(auto) = data.auto_validation {
            c.val_split = Some(defaults::AUTO_VAL_SPLIT);
            if auto == AutoValidation::SmallData {
                let batch = c.batch_size.unwrap_or(defaults::BATCH_SIZE as usize);
                let iterations = iterations_per_epoch(data.train.len(), batch).max(1);
                c.epochs
                    .get_or_insert(defaults::SMALL_DATA_ITERATIONS.div_ceil(iterations).clamp(
                        defaults::SMALL_DATA_MIN_EPOCHS,
                        defaults::SMALL_DATA_MAX_EPOCHS,
                    ));
                c.early_stopping.get_or_insert(defaults::AUTO_PATIENCE);
                if c.optimizer.unwrap_or_default() != OptimizerKind::Adamw {
                    let rows = data.train.len() + data.val.as_ref().map_or(0, Dataset::len);
                    c.weight_decay
                        .get_or_insert(if rows < defaults::TINY_DATA_ROWS {
                            defaults::TINY_DATA_WEIGHT_DECAY
                        } else {
                            defaults::SMALL_DATA_WEIGHT_DECAY
                        });
                }
            }
        }
        c.resolve(data.train.len())
    }

    /// Whether (and why) data with `train_rows` training rows gets an automatic validation
    /// split: only when `val_split` is not set, and then for small data when `epochs` is not
    /// set either, or whenever early stopping is on.
    pub fn auto_validation(&self, train_rows: usize) -> Option<AutoValidation> {
        if self.val_split.is_some() {
            None
        } else if self.epochs.is_none() && train_rows < defaults::SMALL_DATA_ROWS {
            Some(AutoValidation::SmallData)
        } else if self.early_stopping.is_some() {
            Some(AutoValidation::EarlyStopping)
        } else {
            None
        }
    }

    /// The settings recorded in a model file's `training` metadata: its `config` entry, or, in
    /// files written before it existed, the flat keys (`learning_rate` for `lr`); `None` when
    /// neither reads as a config.
    pub fn from_training(training: &serde_json::Value) -> Option<RunConfig> {
        let read = |v: &serde_json::Value| serde_json::from_value::<RunConfig>(v.clone()).ok();
        match training.get("config") {
            Some(config) => read(config),
            None => read(training).or_else(|| {
                // Older names of some values (e.g. `leaky_relu`): keep what reads.
                Some(RunConfig {
                    lr: training.get("learning_rate")?.as_f64(),
                    ..RunConfig::default()
                })
            }),
        }
    }

    /// The same settings without the output part (what the model file records).
    pub fn settings_only(&self) -> RunConfig {
        RunConfig {
            output: Output::default(),
            ..self.clone()
        }
    }

    /// The seed, resolved.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(defaults::SEED)
    }

    /// The activation, resolved.
    pub fn activation(&self) -> Activation {
        self.activation.unwrap_or_default().activation()
    }

    /// The schedule, resolved (call on a [`RunConfig::resolve`]d config for its parameters).
    pub fn schedule(&self) -> Schedule {
        let r = self.resolve(0);
        match r.schedule.unwrap_or_default() {
            ScheduleKind::Constant => Schedule::Constant,
            ScheduleKind::Step => Schedule::Step {
                step_size: r.step_size.unwrap_or_default(),
                gamma: r.gamma.unwrap_or_default(),
            },
            ScheduleKind::Exponential => Schedule::Exponential {
                gamma: r.gamma.unwrap_or_default(),
            },
            ScheduleKind::Cosine => Schedule::Cosine {
                min_lr: r.min_lr.unwrap_or_default(),
            },
            ScheduleKind::Plateau => Schedule::Plateau {
                factor: r.plateau_factor.unwrap_or_default(),
                patience: r.plateau_patience.unwrap_or_default(),
            },
        }
    }

    /// The optimizer with its hyper-parameters (`W ← W − lr·update`), unset ones defaulted.
    pub fn optimizer(&self) -> Result<Optimizer, NablaError> {
        let r = self.resolve(0);
        let (lr, wd) = (r.lr.unwrap_or_default(), r.weight_decay.unwrap_or_default());
        let momentum = r.momentum.unwrap_or_default();
        Ok(match r.optimizer.unwrap_or_default() {
            OptimizerKind::Sgd => {
                if r.nesterov && momentum == 0.0 {
                    return Err(NablaError::Usage(
                        "--nesterov needs a momentum above 0".into(),
                    ));
                }
                let mut o = Sgd::new(lr, momentum);
                o.nesterov = r.nesterov;
                o.weight_decay = wd;
                Optimizer::Sgd(o)
            }
            OptimizerKind::Adam => {
                let mut o = Adam::new(lr);
                o.weight_decay = wd;
                Optimizer::Adam(o)
            }
            OptimizerKind::Adamw => Optimizer::Adam(Adam::adamw(lr, wd)),
            OptimizerKind::Rmsprop => {
                let mut o = RmsProp::new(lr);
                o.weight_decay = wd;
                Optimizer::RmsProp(o)
            }
            OptimizerKind::Adagrad => {
                let mut o = Adagrad::new(lr);
                o.weight_decay = wd;
                Optimizer::Adagrad(o)
            }
        })
    }

    /// The network's spec for `inputs` features and `outputs` outputs of `task`.
    pub fn model_spec(&self, inputs: usize, outputs: usize, task: Task) -> ModelSpec {
        let r = self.resolve(0);
        let mut spec = ModelSpec::mlp_with(
            inputs,
            r.hidden.as_deref().unwrap_or_default(),
            self.activation(),
            outputs,
            r.batch_norm,
            r.dropout.unwrap_or_default() as f32,
        );
        spec.task = task;
        spec
    }

    /// The network for the data in `train` (each sample the image `image`, when the data
    /// says), initialised from the seed.
    pub fn network(
        &self,
        train: &Dataset,
        image: Option<ImageShape>,
    ) -> Result<(ModelSpec, Network), NablaError> {
        let spec = self.spec_for(train, image)?;
        let model = Network::from_spec_with_init(&spec, self.seed(), self.init)?;
        Ok((spec, model))
    }

    /// The spec of [`RunConfig::network`]'s network, checked, with nothing allocated for it
    /// (so its sizes can be weighed first).
    pub fn spec_for(
        &self,
        train: &Dataset,
        image: Option<ImageShape>,
    ) -> Result<ModelSpec, NablaError> {
        let outputs = match train.task() {
            Task::Regression => 1,
            Task::Classification => train.classes().len(),
        };
        let mut spec = match &self.layers {
            Some(text) => {
                let image = self.input_image(train.dim(), image)?;
                let mut spec = crate::nn::ModelSpec::from_layers(text, train.dim(), image)?;
                spec.task = train.task();
                check_outputs(&spec, outputs)?;
                spec
            }
            None => self.model_spec(train.dim(), outputs, train.task()),
        };
        spec.classes = train.classes().to_vec();
        spec.validate()?;
        Ok(spec)
    }

    /// The image shape of a sample of `dim` values: `image_shape` when set (it must hold `dim`
    /// values), else the data's own.
    fn input_image(
        &self,
        dim: usize,
        data: Option<ImageShape>,
    ) -> Result<Option<ImageShape>, NablaError> {
        let Some(text) = &self.image_shape else {
            return Ok(data);
        };
        let shape = ImageShape::parse(text).ok_or_else(|| {
            let sides: Option<Vec<u128>> = text
                .split(['x', 'X', '×'])
                .map(|p| p.trim().parse().ok())
                .collect();
            let why = match sides.as_deref() {
                Some([c, h, w]) if *c > 0 && *h > 0 && *w > 0 => {
                    format!(" {text:?} holds more values than can be counted (C·H·W overflows)")
                }
                Some(_) | None => format!(" must be CxHxW (like 1x28x28), got {text:?}"),
            };
            NablaError::Settings(Message::new().setting(Setting::ImageShape).text(why))
        })?;
        if shape.len() != dim {
            return Err(NablaError::Settings(
                Message::new()
                    .value(Setting::ImageShape, text)
                    .text(format!(
                        " holds {} values, the data has {dim} columns",
                        shape.len()
                    )),
            ));
        }
        Ok(Some(shape))
    }

    /// The augmentation `augment` asks for on `data`'s training images, or why it cannot be
    /// done: a bad spec, data that are not images (no image shape of their own and no
    /// `image_shape`), inputs scaled column by column (`scale` standard or minmax: a pixel
    /// moved to another column would be scaled as that column), a shift that moves the whole
    /// image out of view.
    pub fn augmenter(&self, data: &RunData) -> Result<Option<Augmenter>, NablaError> {
        let Some(augment) = self.augment.as_deref().map(Augment::parse).transpose()? else {
            return Ok(None);
        };
        let Some(augment) = augment else {
            return Ok(None);
        };
        let dim = data.train.dim();
        let Some(image) = self.input_image(dim, data.image)? else {
            return Err(NablaError::Settings(
                Message::new()
                    .setting(Setting::Augment)
                    .text(format!(
                        " moves and turns images, but {} is not images: its {dim} columns have no \
                         image shape (give one with ",
                        data.train.name()
                    ))
                    .setting(Setting::ImageShape)
                    .text(" if its rows are images)"),
            ));
        };
        let p = &data.preprocess;
        let one_factor =
            p.center.iter().all(|&c| c == 0.0) && p.scale.windows(2).all(|pair| pair[0] == pair[1]);
        if !one_factor {
            return Err(NablaError::Settings(
                Message::new()
                    .setting(Setting::Augment)
                    .text(" moves pixels to other columns, but ")
                    .value(Setting::Scale, p.scaling.name())
                    .text(
                        " scales every column on its own, so a moved pixel would be scaled as \
                         its new column: pass ",
                    )
                    .value(Setting::Scale, "none")
                    .text(" (IDX images are pixels / 255 and need nothing)"),
            ));
        }
        let shape = [image.channels, image.height, image.width];
        Augmenter::new(augment, shape, self.seed()).map(Some)
    }

    /// The trainer's settings (call on a [`RunConfig::resolve`]d config: the epoch rule needs
    /// the data).
    pub fn train_config(&self) -> TrainConfig {
        let r = self.resolve(0);
        TrainConfig {
            schedule: self.schedule(),
            warmup: r.warmup.unwrap_or_default(),
            early_stopping: r.early_stopping,
            clip_grad_norm: r.clip_grad_norm,
            ..TrainConfig::new(
                r.epochs.unwrap_or_default(),
                r.batch_size.unwrap_or_default(),
                r.seed(),
                r.threads.unwrap_or(1),
            )
        }
    }

    /// Loads the training, validation and test sets `data` and its options ask for, and
    /// applies `limit_train`. Without `val_split`, the validation split is carved
    /// automatically when [`RunConfig::auto_validation`] says so (the data is read again with
    /// it, so the split is exactly the one `val_split` would make).
    pub fn load_data(&self) -> Result<RunData, NablaError> {
        let loaded = self.load_split(self.val_split.unwrap_or(defaults::VAL_SPLIT))?;
        match self.auto_validation(loaded.train.len()) {
            Some(auto) => Ok(RunData {
                auto_validation: Some(auto),
                ..self.load_split(defaults::AUTO_VAL_SPLIT)?
            }),
            None => Ok(loaded),
        }
    }

    /// [`RunConfig::load_data`] with the validation fraction `val_split`.
    fn load_split(&self, val_split: f64) -> Result<RunData, NablaError> {
        let loaded = match &self.data {
            None => self.load_table(None, val_split),
            Some(path) if path.is_dir() => self.load_idx(path, val_split),
            Some(path) if path.is_file() => self.load_table(Some(path), val_split),
            Some(path) if path.exists() => Err(NablaError::data(
                path,
                "path",
                "expected a CSV file or a folder of MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...)",
            )),
            Some(path) => Err(NablaError::data(path, "path", "no such file or folder")),
        }?;
        Ok(loaded)
    }

    /// A CSV file, or the built-in digits when `path` is `None`.
    fn load_table(
        &self,
        path: Option<&std::path::Path>,
        val_split: f64,
    ) -> Result<RunData, NablaError> {
        let csv_options = CsvOptions {
            target: self.target.clone(),
            features: self.features.clone(),
            drop: self.drop.clone(),
            delimiter: self.delimiter.map(|c| c as u8),
            ..Default::default()
        };
        let table_options = TableOptions {
            task: self.task,
            impute: match self.impute {
                None => Impute::Refuse,
                Some(ImputeKind::Mean) => Impute::Mean,
                Some(ImputeKind::Median) => Impute::Median,
                Some(ImputeKind::DropRows) => Impute::DropRows,
            },
            scaling: self.scale.map_or(Scaling::Standard, ScaleKind::scaling),
            test_split: self.test_split.unwrap_or(defaults::TEST_SPLIT),
            val_split,
            limit_train: self.limit_train,
            seed: self.seed(),
        };
        let prepared = match path {
            Some(path) => data::table::load_csv(
                path,
                self.test_data.as_deref(),
                &csv_options,
                &table_options,
            )?,
            None => {
                let raw = data::builtin::digits_table()?;
                let test = match &self.test_data {
                    Some(t) => Some(data::csv::read(
                        t,
                        &data::table::test_options(&raw, &csv_options),
                    )?),
                    None => None,
                };
                data::table::prepare(data::builtin::DIGITS_NAME, raw, test, &table_options)?
            }
        };
        Ok(RunData {
            train: prepared.train,
            val: prepared.val,
            test: prepared.test,
            warnings: prepared.warnings,
            preprocess: prepared.preprocess,
            auto_validation: None,
            image: None,
        })
    }

    /// A folder of IDX images: CSV-only settings are refused.
    fn load_idx(&self, path: &std::path::Path, val_split: f64) -> Result<RunData, NablaError> {
        for (given, flag) in [
            (self.test_data.is_some(), "--test-data"),
            (self.target.is_some(), "--target"),
            (self.features.is_some(), "--features"),
            (!self.drop.is_empty(), "--drop"),
            (self.delimiter.is_some(), "--delimiter"),
            (self.impute.is_some(), "--impute"),
            (self.task == Some(Task::Regression), "--task regression"),
        ] {
            if given {
                return Err(NablaError::Usage(format!(
                    "{flag} applies to CSV data; IDX folders hold images and labels (pixels are scaled by 1/255)"
                )));
            }
        }
        let (mut train, test, (rows, cols)) = data::idx::read_dir_shaped(path)?;
        if let Some(n) = self.limit_train.filter(|&n| n < train.len()) {
            train = limit(&train, n, self.seed())?;
        }
        let (train, val, warnings) = if val_split > 0.0 {
            let (train, val, warnings) =
                data::table::carve_validation(&train, val_split, self.seed())?;
            (train, Some(val), warnings)
        } else {
            (train, None, Vec::new())
        };
        // Pixels are /255 unless `scale` asks for a fit on the training images.
        let scaling = self.scale.map_or(Scaling::Pixels, ScaleKind::scaling);
        let preprocess = Preprocess::pixels_fitted(&train, scaling)?;
        // Pixels / 255 and `none` keep the bytes; standard and minmax store f32.
        let rescale = |d: Dataset| d.rescale_bytes(&preprocess.center, &preprocess.scale);
        Ok(RunData {
            train: rescale(train)?,
            val: val.map(rescale).transpose()?,
            test: rescale(test)?,
            warnings,
            preprocess,
            auto_validation: None,
            image: Some(ImageShape::new(1, rows, cols)),
        })
    }
}

/// A `layers` stack must end in as many outputs as the data has classes (1 for regression).
fn check_outputs(spec: &ModelSpec, outputs: usize) -> Result<(), NablaError> {
    let got = spec.outputs();
    if got == outputs {
        return Ok(());
    }
    Err(NablaError::Settings(
        Message::new()
            .text("the last dense layer of ")
            .setting(Setting::Layers)
            .text(format!(
                " gives {got} outputs, the data needs {outputs} (end it with `dense {outputs}`)"
            )),
    ))
}

/// A seeded subset of `n` training samples (stratified by class for classification).
fn limit(train: &Dataset, n: usize, seed: u64) -> Result<Dataset, NablaError> {
    let labels = match train.task() {
        Task::Classification => train.labels(),
        Task::Regression => &[],
    };
    let keep = data::split::sample_exactly(labels, train.classes().len(), train.len(), n, seed, 7)?;
    Ok(train.subset(&keep, train.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_fills_every_default_once() {
        let r = RunConfig::default().resolve(1000);
        assert_eq!(r.hidden, Some(vec![256, 128]));
        assert_eq!(r.activation, Some(ActivationKind::Relu));
        assert_eq!(r.optimizer, Some(OptimizerKind::Adam));
        assert_eq!(r.lr, Some(0.001));
        assert_eq!(r.weight_decay, Some(0.0));
        assert_eq!(r.batch_size, Some(32));
        // ceil(1000 / 32) = 32 iterations per epoch → ceil(1000 / 32) = 32 epochs.
        assert_eq!(r.epochs, Some(32));
        assert_eq!(r.seed, Some(42));
        assert_eq!(r.test_split, Some(0.2));
        assert_eq!(r.gamma, None);
        assert!(r.threads.is_some());
        assert_eq!(r.resolve(5), r, "resolving twice changes nothing");
    }

    #[test]
    fn resolve_applies_the_epoch_and_rate_rules() {
        // 100 samples / 32 = 4 iterations per epoch → 250 epochs for 1,000, capped at 200.
        assert_eq!(RunConfig::default().resolve(100).epochs, Some(200));
        // 1,437 samples / 32 = 45 iterations → ceil(1000 / 45) = 23 → at least 30.
        assert_eq!(RunConfig::default().resolve(1437).epochs, Some(30));
        // 320 samples → 10 iterations → 100 epochs.
        assert_eq!(RunConfig::default().resolve(320).epochs, Some(100));
        let sgd = RunConfig {
            optimizer: Some(OptimizerKind::Sgd),
            ..RunConfig::default()
        };
        assert_eq!(sgd.resolve(1).lr, Some(0.05));
        let tanh = RunConfig {
            activation: Some(ActivationKind::Tanh),
            ..RunConfig::default()
        };
        assert_eq!(tanh.resolve(1).lr, Some(0.01));
        let adamw = RunConfig {
            optimizer: Some(OptimizerKind::Adamw),
            schedule: Some(ScheduleKind::Exponential),
            ..RunConfig::default()
        }
        .resolve(1);
        assert_eq!((adamw.weight_decay, adamw.gamma), (Some(0.01), Some(0.95)));
    }

    #[test]
    fn round_trips_through_json_and_reads_old_model_files() {
        let c = RunConfig {
            data: Some("a.csv".into()),
            delimiter: Some('\t'),
            impute: Some(ImputeKind::DropRows),
            init: Some(Init::GlorotUniform),
            task: Some(Task::Regression),
            output: Output {
                save: Some("m.safetensors".into()),
                ..Output::default()
            },
            ..RunConfig::default()
        }
        .resolve(10);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), c);
        // A model file's training metadata from before RunConfig: `learning_rate`, extra keys.
        let old = serde_json::json!({"learning_rate": 0.05, "data": "digits", "epochs_run": 3});
        let c: RunConfig = serde_json::from_value(old).unwrap();
        assert_eq!(c.lr, Some(0.05));
    }

    #[test]
    fn the_small_data_rule_applies_only_without_epochs_and_val_split() {
        let c = RunConfig::default();
        assert_eq!(c.auto_validation(9_999), Some(AutoValidation::SmallData));
        assert_eq!(c.auto_validation(10_000), None, "large data: no split");
        let es = RunConfig {
            early_stopping: Some(5),
            ..RunConfig::default()
        };
        assert_eq!(
            es.auto_validation(60_000),
            Some(AutoValidation::EarlyStopping)
        );
        let epochs = RunConfig {
            epochs: Some(3),
            ..RunConfig::default()
        };
        assert_eq!(epochs.auto_validation(100), None);
        let none = RunConfig {
            val_split: Some(0.0),
            early_stopping: Some(5),
            ..RunConfig::default()
        };
        assert_eq!(
            none.auto_validation(100),
            None,
            "--val-split 0 asks for none"
        );
    }

    #[test]
    fn nesterov_without_momentum_is_refused() {
        let c = RunConfig {
            optimizer: Some(OptimizerKind::Sgd),
            nesterov: true,
            momentum: Some(0.0),
            ..RunConfig::default()
        };
        assert!(c.optimizer().is_err());
    }
}
