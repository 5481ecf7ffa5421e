//! The baselines a network must beat, fitted on the same training split and scored on the
//! same validation and test sets with the same measures ([`evaluate_with`]):
//! - **trivial**: no input is read. Classification predicts the training split's class
//!   frequencies (so its accuracy is the majority class's share); regression predicts the
//!   training mean.
//! - **linear**: one linear layer. Regression solves least squares in closed form (with a tiny
//!   ridge for stability); classification trains a logistic (softmax) regression with the same
//!   engine as the network (Adam, lr 0.01, batch 32), keeping its best validation epoch when
//!   there is a validation set.
//!
//! Both are networks with no hidden layer, so they are scored by exactly the code that scores
//! the network.

use super::fit::{Evaluation, Splits, TrainConfig, Trainer, evaluate_with};
use super::{Hooks, iterations_per_epoch};
use crate::data::Dataset;
use crate::error::{Message, NablaError, Setting};
use crate::kernels::activation::Activation;
use crate::loss::Loss;
use crate::nn::{ModelSpec, Network};
use crate::optim::{Adam, Optimizer};
use crate::task::Task;

/// A baseline's scores on the validation set and the test set (each `None` when absent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// On the validation set.
    pub val: Option<Evaluation>,
    /// On the test set.
    pub test: Option<Evaluation>,
}

/// The trivial and (for tabular data) linear baselines of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baselines {
    /// Class frequencies, or the mean.
    pub trivial: Scores,
    /// A linear or logistic regression; `None` when not fitted.
    pub linear: Option<Scores>,
}

/// Settings of the linear baseline's training.
#[derive(Clone, Copy, Debug)]
pub struct BaselineConfig {
    /// Fit the linear model too.
    pub linear: bool,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// The most multiply-adds the linear baseline may cost (rows × inputs × classes × epochs,
/// about 20 s on one core); beyond it the linear baseline is skipped (`linear: None`).
pub const MAX_LINEAR_WORK: u128 = 20_000_000_000;

/// Fits and scores both baselines on `splits`.
pub fn fit(splits: Splits, config: BaselineConfig) -> Result<Baselines, NablaError> {
    let never = std::sync::atomic::AtomicBool::new(false);
    fit_until(splits, config, &never).map(|b| b.unwrap_or(Baselines::NONE))
}

impl Baselines {
    /// No baseline scored.
    pub const NONE: Baselines = Baselines {
        trivial: Scores {
            val: None,
            test: None,
        },
        linear: None,
    };
}

/// [`fit`], stopped when `stop` is set (`None`: stopped before the baselines were scored).
/// With neither a validation nor a test set there is nothing to score and nothing is fitted;
/// the linear baseline is skipped when it would cost more than [`MAX_LINEAR_WORK`].
pub fn fit_until(
    splits: Splits,
    config: BaselineConfig,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Option<Baselines>, NablaError> {
    let scored = |d: Option<&Dataset>| d.is_some_and(|d| !d.is_empty());
    if !scored(splits.val) && !scored(splits.test) {
        return Ok(Some(Baselines::NONE));
    }
    let trivial = trivial(splits.train)?;
    let linear = match config.linear && affordable(splits.train) {
        true => match splits.train.task() {
            Task::Regression => Some(least_squares(splits.train)?),
            Task::Classification => match logistic(splits, config, stop)? {
                Some(model) => Some(model),
                None => return Ok(None),
            },
        },
        false => None,
    };
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    let trivial = score(&trivial, splits)?;
    let linear = linear.map(|m| score(&m, splits)).transpose()?;
    Ok(Some(Baselines { trivial, linear }))
}

/// Whether the linear baseline on `train` stays within [`MAX_LINEAR_WORK`].
fn affordable(train: &Dataset) -> bool {
    let outputs = match train.task() {
        Task::Regression => 1,
        Task::Classification => train.classes().len(),
    };
    let (epochs, _) = logistic_epochs(train);
    let work = train.len() as u128 * train.dim() as u128 * outputs as u128 * epochs as u128;
    work <= MAX_LINEAR_WORK
}

/// Scores `model` on the validation and test sets of `splits`.
fn score(model: &Network, splits: Splits) -> Result<Scores, NablaError> {
    let loss = Loss::for_task(splits.train.task());
    let eval = |d: Option<&Dataset>| {
        d.filter(|d| !d.is_empty())
            .map(|d| evaluate_with(model, d, loss))
            .transpose()
    };
    Ok(Scores {
        val: eval(splits.val)?,
        test: eval(splits.test)?,
    })
}

/// A network with no hidden layer for `train`.
fn linear_network(train: &Dataset, seed: u64) -> Result<Network, NablaError> {
    let outputs = match train.task() {
        Task::Regression => 1,
        Task::Classification => train.classes().len(),
    };
    Network::from_spec(
        &ModelSpec::mlp(train.dim(), &[], Activation::Relu, outputs),
        seed,
    )
}

/// Sets the only layer's weights to zero and its bias to `bias`.
fn set_linear(model: &mut Network, weight: &[f32], bias: &[f32]) -> Result<(), NablaError> {
    model.load_tensors(|name, _, _, dst| {
        let src = if name.ends_with("weight") {
            weight
        } else {
            bias
        };
        if src.len() != dst.len() {
            return Err(NablaError::Usage(format!(
                "baseline: {name} holds {} values, {} given",
                dst.len(),
                src.len()
            )));
        }
        dst.copy_from_slice(src);
        Ok(())
    })
}

/// The model that ignores its input: log class frequencies (add-one smoothed, so a class
/// missing from the training split still has a finite loss) or the mean target.
fn trivial(train: &Dataset) -> Result<Network, NablaError> {
    let mut model = linear_network(train, 0)?;
    let bias: Vec<f32> = match train.task() {
        Task::Regression => {
            let n = train.targets().len().max(1) as f64;
            vec![(train.targets().iter().map(|&t| f64::from(t)).sum::<f64>() / n) as f32]
        }
        Task::Classification => {
            let counts = train.class_counts();
            let total = (counts.iter().sum::<usize>() + counts.len()) as f64;
            counts
                .iter()
                .map(|&c| ((c as f64 + 1.0) / total).ln() as f32)
                .collect()
        }
    };
    let weight = vec![0.0; model.inputs() * model.outputs()];
    set_linear(&mut model, &weight, &bias)?;
    Ok(model)
}

/// Least squares `min ‖X w + b − t‖² + λ‖w‖²` on the standardised targets, by the normal
/// equations and a Cholesky factorisation in f64 (λ = 1e-6 · rows keeps it positive definite).
fn least_squares(train: &Dataset) -> Result<Network, NablaError> {
    let (n, d) = (train.len(), train.dim());
    let mut x = vec![0.0f32; n * d];
    train.gather(&(0..n).collect::<Vec<_>>(), &mut x);
    let k = d + 1;
    let (mut a, mut b) = (vec![0.0f64; k * k], vec![0.0f64; k]);
    let mut row = vec![0.0f64; k];
    for (r, &t) in x.chunks_exact(d.max(1)).zip(train.targets()) {
        row[..d]
            .iter_mut()
            .zip(r)
            .for_each(|(o, &v)| *o = f64::from(v));
        row[d] = 1.0;
        for i in 0..k {
            b[i] += row[i] * f64::from(t);
            for j in 0..=i {
                a[i * k + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..d {
        a[i * k + i] += 1e-6 * n as f64;
    }
    let w = cholesky_solve(&mut a, &mut b, k).ok_or_else(|| {
        NablaError::Usage("baseline: the least-squares system is singular".into())
    })?;
    let mut model = linear_network(train, 0)?;
    let weight: Vec<f32> = w[..d].iter().map(|&v| v as f32).collect();
    set_linear(&mut model, &weight, &[w[d] as f32])?;
    Ok(model)
}

/// Solves `A x = b` for symmetric positive definite `A` (lower triangle filled, `k × k`);
/// `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> Option<Vec<f64>> {
    for j in 0..k {
        let mut diag = a[j * k + j];
        for p in 0..j {
            diag -= a[j * k + p] * a[j * k + p];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return None;
        }
        let diag = diag.sqrt();
        a[j * k + j] = diag;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = v / diag;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..k {
        let s: f64 = (0..i).map(|p| a[i * k + p] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|p| a[p * k + i] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    Some(b.to_vec())
}

/// Logistic (softmax) regression trained by the network's engine: enough epochs for about
/// 3,000 iterations (10 to 100), early stopping on the validation set when there is one.
/// The logistic baseline's epochs and batch size on `train`.
fn logistic_epochs(train: &Dataset) -> (usize, usize) {
    let batch = 32;
    let iterations = iterations_per_epoch(train.len(), batch).max(1);
    (3000usize.div_ceil(iterations).clamp(10, 100), batch)
}

/// `None` when `stop` was set during the fit.
fn logistic(
    splits: Splits,
    config: BaselineConfig,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Option<Network>, NablaError> {
    let mut model = linear_network(splits.train, config.seed)?;
    let (epochs, batch) = logistic_epochs(splits.train);
    let mut trainer = Trainer::new(TrainConfig {
        early_stopping: splits.val.map(|_| 10),
        ..TrainConfig::new(epochs, batch, config.seed, config.threads)
    })?;
    let mut adam = Optimizer::Adam(Adam::new(0.01));
    let splits = Splits {
        test: None,
        ..splits
    };
    let report = trainer.fit(&mut model, &mut adam, splits, Hooks::new().stop_when(stop))?;
    Ok((!report.interrupted).then_some(model))
}

/// The main measure of an evaluation and whether higher is better: accuracy, or R².
fn main_measure(e: &Evaluation) -> Option<(&'static str, f64)> {
    match (e.accuracy, e.regression) {
        (Some(a), _) => Some(("accuracy", a)),
        (None, Some(r)) => Some(("R²", r.r2)),
        _ => None,
    }
}

/// When the network does no better than the linear model on the validation set: says so
/// plainly with both numbers and what to try. Ties on accuracy are broken by the loss.
pub fn not_better_than_linear(network: &Evaluation, linear: &Evaluation) -> Option<Message> {
    let (name, net) = main_measure(network)?;
    let (_, lin) = main_measure(linear)?;
    let worse = net < lin || (net == lin && network.loss >= linear.loss);
    if !worse {
        return None;
    }
    let (a, b) = super::diagnosis::pair(net, lin);
    Some(
        Message::new()
            .text(format!(
                "the network is not better than a linear model on the validation data (validation {name} {a} vs {b}): the relation may be close to linear or the data too small for this network; try a smaller network ("
            ))
            .value(Setting::Hidden, "32")
            .text("), more regularisation (")
            .setting(Setting::WeightDecay)
            .text(", ")
            .setting(Setting::Dropout)
            .text("), or keep the linear model"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Features;

    fn eval(loss: f64, accuracy: f64) -> Evaluation {
        Evaluation {
            loss,
            accuracy: Some(accuracy),
            regression: None,
        }
    }

    #[test]
    fn a_network_below_the_linear_model_is_told_so() {
        let m = not_better_than_linear(&eval(0.5, 0.90), &eval(0.4, 0.93)).unwrap();
        let text = m.to_string();
        assert!(text.contains("not better than a linear model"), "{text}");
        assert!(text.contains("0.9000 vs 0.9300"), "{text}");
        assert!(not_better_than_linear(&eval(0.3, 0.95), &eval(0.4, 0.93)).is_none());
        // Same accuracy: the loss decides.
        assert!(not_better_than_linear(&eval(0.5, 0.93), &eval(0.4, 0.93)).is_some());
    }

    #[test]
    fn a_stop_or_nothing_to_score_fits_nothing() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let y: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
        let data = Dataset::regression("line", Features::F32(x), 1, y, 0.0, 1.0).unwrap();
        let config = BaselineConfig {
            linear: true,
            seed: 1,
            threads: 1,
        };
        let stop = std::sync::atomic::AtomicBool::new(true);
        assert_eq!(
            fit_until(Splits::new(&data, &data), config, &stop).unwrap(),
            None
        );
        let alone = Splits {
            train: &data,
            val: None,
            test: None,
        };
        let never = std::sync::atomic::AtomicBool::new(false);
        assert_eq!(
            fit_until(alone, config, &never).unwrap(),
            Some(Baselines::NONE)
        );
    }

    #[test]
    fn least_squares_recovers_a_line_and_trivial_predicts_the_mean() {
        // y = 2 x0 − x1 + 3, exactly.
        let rows: Vec<[f32; 2]> = (0..50)
            .map(|i| [(i % 7) as f32 - 3.0, (i % 5) as f32 * 0.5])
            .collect();
        let x: Vec<f32> = rows.iter().flatten().copied().collect();
        let y: Vec<f32> = rows.iter().map(|r| 2.0 * r[0] - r[1] + 3.0).collect();
        let data = Dataset::regression("line", Features::F32(x), 2, y, 0.0, 1.0).unwrap();
        let b = fit(
            Splits::new(&data, &data),
            BaselineConfig {
                linear: true,
                seed: 1,
                threads: 1,
            },
        )
        .unwrap();
        let lin = b.linear.unwrap().test.unwrap().regression.unwrap();
        assert!(lin.r2 > 0.999_99, "{lin:?}");
        let triv = b.trivial.test.unwrap().regression.unwrap();
        assert!(triv.r2.abs() < 1e-6, "{triv:?}");
    }
}
