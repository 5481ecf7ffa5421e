//! A user-defined module — a residual network `y = W_out·(h + relu(W₂·h + b₂)) + b_out` with
//! `h = relu(W₁·x + b₁)` — gets everything a built-in network gets: the trainer, evaluation,
//! saving its tensors and loading them by name into the same struct, checkpoints and an exact
//! resume.

use nabla::explain::{Target, explain_model};
use nabla::nn::Traced;
use nabla::prelude::*;
use nabla::train::checkpoint;

/// The residual block of the README: `h + relu(W·h + b)`.
struct Residual {
    inner: Linear,
}

impl Module for Residual {
    fn forward(&self, tape: &mut Tape, h: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let z = self.inner.forward(tape, h, ctx)?;
        let a = tape.relu(z);
        tape.add(h, a)
    }
}

impl Residual {
    /// Shows the inner layer to `nabla explain` (the skip connection is this module's own).
    fn traced(
        &self,
        tape: &mut Tape,
        h: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        let z = self.inner.forward_traced(tape, h, ctx, trace)?;
        let a = tape.relu(z);
        tape.add(h, a)
    }
}

/// Input layer, one residual block, output layer.
struct ResNet {
    input: Linear,
    block: Residual,
    output: Linear,
}

impl Module for ResNet {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let h = self.input.forward(tape, x, ctx)?;
        let h = tape.relu(h);
        let h = self.block.forward(tape, h, ctx)?;
        self.output.forward(tape, h, ctx)
    }

    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        let h = self.input.forward_traced(tape, x, ctx, trace)?;
        let h = tape.relu(h);
        let h = self.block.traced(tape, h, ctx, trace)?;
        self.output.forward_traced(tape, h, ctx, trace)
    }
}

fn resnet(seed: u64) -> Network<ResNet> {
    Network::build(64, 10, seed, |b| {
        Ok(ResNet {
            input: Linear::new(&mut b.pp("input"), 64, 32, Init::HeNormal),
            block: Residual {
                inner: Linear::new(&mut b.pp("block").pp("inner"), 32, 32, Init::HeNormal),
            },
            output: Linear::new(&mut b.pp("output"), 32, 10, Init::GlorotUniform),
        })
    })
    .unwrap()
}

fn digits() -> (Dataset, Dataset) {
    let d = builtin::digits().unwrap();
    let train: Vec<usize> = (0..1400).collect();
    let test: Vec<usize> = (1400..d.len()).collect();
    (d.subset(&train, "train"), d.subset(&test, "test"))
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-custom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_user_module_trains_saves_reloads_and_resumes_exactly() {
    let (train, test) = digits();
    let net = resnet(1);
    let names: Vec<&str> = net.tensors().iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "input.weight",
            "input.bias",
            "block.inner.weight",
            "block.inner.bias",
            "output.weight",
            "output.bias"
        ]
    );

    // Train 6 epochs without interruption.
    let config = TrainConfig::new(6, 32, 5, 2);
    let mut whole = resnet(1);
    let mut adam = Optimizer::Adam(Adam::new(0.003));
    let report = Trainer::new(config.clone())
        .unwrap()
        .fit(
            &mut whole,
            &mut adam,
            Splits::new(&train, &test),
            Hooks::new(),
        )
        .unwrap();
    let accuracy = report.history[5].test_accuracy.unwrap();
    assert!(
        accuracy > 0.85,
        "test accuracy {accuracy}: {:?}",
        report.history
    );

    // Save its tensors and load them by name into a freshly built (differently seeded) struct.
    let dir = temp("state");
    nabla::io::save_state(dir.join("resnet.safetensors"), &whole).unwrap();
    let mut reloaded = resnet(99);
    nabla::io::load_state(dir.join("resnet.safetensors"), &mut reloaded).unwrap();
    let x = Tensor::from_vec(1, 64, (0..64).map(|i| (i % 17) as f32 / 16.0).collect()).unwrap();
    assert_eq!(whole.logits(&x).unwrap(), reloaded.logits(&x).unwrap());
    // A state of another shape is refused, naming the tensor.
    let other = Network::build(64, 10, 1, |b| {
        Ok(Linear::new(&mut b.pp("input"), 64, 10, Init::HeNormal))
    })
    .unwrap();
    nabla::io::save_state(dir.join("other.safetensors"), &other).unwrap();
    let err = nabla::io::load_state(dir.join("other.safetensors"), &mut resnet(1)).unwrap_err();
    assert!(err.to_string().contains("input.weight"), "{err}");

    // The same run killed after epoch 3 (its checkpoint hook fails then), resumed from the
    // checkpoint into a new struct: bit-identical weights and history.
    let ckpt_dir = dir.join("checkpoints");
    let mut killed = resnet(1);
    let mut adam = Optimizer::Adam(Adam::new(0.003));
    let hooks = Hooks::new().on_checkpoint(|state, net: &Network<ResNet>, opt: &Optimizer| {
        checkpoint::save_state(
            &ckpt_dir,
            state,
            net,
            &opt.state(),
            &Default::default(),
            Default::default(),
        )?;
        if state.epoch == 3 {
            return Err(NablaError::Usage("killed".into()));
        }
        Ok(())
    });
    let result = Trainer::new(config.clone()).unwrap().fit(
        &mut killed,
        &mut adam,
        Splits::new(&train, &test),
        hooks,
    );
    assert!(
        matches!(&result, Err(NablaError::Usage(m)) if m == "killed"),
        "{:?}",
        result.err()
    );
    let mut resumed = resnet(42);
    let ckpt =
        checkpoint::load_into(&checkpoint::latest(&ckpt_dir).unwrap(), &mut resumed).unwrap();
    assert_eq!(ckpt.state.epoch, 3);
    let mut adam = Optimizer::Adam(Adam::new(0.003));
    adam.set_state(ckpt.optimizer);
    let resumed_report = Trainer::new(config)
        .unwrap()
        .resume(
            &mut resumed,
            &mut adam,
            Splits::new(&train, &test),
            ckpt.state,
            Hooks::new(),
        )
        .unwrap();
    assert_eq!(resumed.params().tensors(), whole.params().tensors());
    let losses = |r: &nabla::train::FitReport| {
        r.history
            .iter()
            .map(|m| m.test_loss.map(f64::to_bits))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed_report), losses(&report));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_shows_a_user_modules_layers_from_the_values_they_read() {
    let net = resnet(3);
    let digits = builtin::digits().unwrap();
    let mut x = vec![0.0; 64];
    digits.gather(&[5], &mut x);
    let t = explain_model(
        &net,
        &x,
        Target::Class(digits.labels()[5] as usize),
        3,
        None,
        0.1,
        1e-2,
    )
    .unwrap();
    // Its three linear layers, named as the module named them; the skip connection's inputs are
    // values the module computed itself.
    let names: Vec<(String, String)> = t
        .stages
        .iter()
        .map(|s| (s.symbol.clone(), s.input.clone()))
        .collect();
    assert_eq!(
        names,
        [("z1", "x"), ("z2", "v1"), ("z3", "v2")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(
        t.weights
            .iter()
            .any(|w| w.param.starts_with("block.inner.weight["))
    );
    for w in &t.weights {
        let tr = &w.trace;
        assert!(
            (tr.upstream * tr.local - tr.gradient).abs() <= 1e-6 * (1.0 + tr.gradient.abs()),
            "{}",
            tr.name
        );
        assert!(
            (tr.numeric_gradient - f64::from(tr.gradient)).abs() < 2e-3,
            "{}: {} vs {}",
            tr.name,
            tr.numeric_gradient,
            tr.gradient
        );
    }
    for c in &t.tensors {
        let gap = (c.numeric_directional - c.gradient_norm).abs();
        assert!(
            gap <= 0.02 * c.gradient_norm + 1e-6,
            "{}: {} vs {}",
            c.name,
            c.numeric_directional,
            c.gradient_norm
        );
    }
}
