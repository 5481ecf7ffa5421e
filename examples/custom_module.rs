//! A user-defined module: a residual block `y = x + relu(W·x + b)` in a small network, trained on
//! the built-in digits, its tensors saved and loaded back by name into the same struct.
//! `cargo run --release --example custom_module`

use nabla::prelude::*;

/// `y = x + relu(W·x + b)`.
struct Residual {
    inner: Linear,
}

impl Module for Residual {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let z = self.inner.forward(tape, x, ctx)?;
        let a = tape.relu(z);
        tape.add(x, a)
    }
}

/// 64 pixels → 32 (ReLU) → residual block → 10 classes.
struct Net {
    input: Linear,
    block: Residual,
    output: Linear,
}

impl Module for Net {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        let h = self.input.forward(tape, x, ctx)?;
        let h = tape.relu(h);
        let h = self.block.forward(tape, h, ctx)?;
        self.output.forward(tape, h, ctx)
    }
}

fn build(seed: u64) -> Result<Network<Net>, NablaError> {
    Network::build(64, 10, seed, |b| {
        Ok(Net {
            input: Linear::new(&mut b.pp("input"), 64, 32, Init::HeNormal),
            block: Residual {
                inner: Linear::new(&mut b.pp("block.inner"), 32, 32, Init::HeNormal),
            },
            output: Linear::new(&mut b.pp("output"), 32, 10, Init::GlorotUniform),
        })
    })
}

fn main() -> Result<(), NablaError> {
    let digits = builtin::digits()?;
    let shuffled: Vec<usize> = (0..digits.len()).map(|i| i * 7 % digits.len()).collect();
    let train = digits.subset(&shuffled[..1500], "train");
    let test = digits.subset(&shuffled[1500..], "test");
    let mut net = build(1)?;
    let mut optimizer = Optimizer::Adam(Adam::new(0.003));
    let mut trainer = Trainer::new(TrainConfig::default().epochs(10).seed(1).threads(2))?;
    let report = trainer.fit(
        &mut net,
        &mut optimizer,
        Splits::new(&train, &test),
        Hooks::new(),
    )?;
    let accuracy = report
        .history
        .last()
        .and_then(|m| m.test_accuracy)
        .unwrap_or(0.0);
    println!(
        "residual network: test accuracy {accuracy:.4} after {} epochs",
        report.history.len()
    );

    let path = std::env::temp_dir().join("nabla-residual.safetensors");
    nabla::io::save_state(&path, &net)?;
    let mut again = build(2)?;
    nabla::io::load_state(&path, &mut again)?;
    let reloaded = nabla::train::evaluate(&again, &test)?;
    println!(
        "reloaded by name: test accuracy {:.4}",
        reloaded.accuracy.unwrap_or(0.0)
    );
    for t in again.tensors() {
        println!("  {:<20} {:?}", t.name, t.shape);
    }
    std::fs::remove_file(&path).ok();
    assert!(accuracy > 0.9 && reloaded.accuracy == Some(accuracy));
    Ok(())
}
