//! Arrays in memory → a network → training → a model file → predictions, with the library only.
//! `cargo run --release --example train_in_memory`

use nabla::prelude::*;

fn main() -> Result<(), NablaError> {
    // 2,000 points in the square [-1.5, 1.5]²: "inner" inside the unit circle, else "outer".
    let mut rng = 12345u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.5
    };
    let points: Vec<f32> = (0..4000).map(|_| next()).collect();
    let labels: Vec<u32> = points
        .chunks(2)
        .map(|p| u32::from(p[0].hypot(p[1]) >= 1.0))
        .collect();
    let classes = vec!["inner".to_string(), "outer".to_string()];
    let data = Dataset::new("circle", Features::F32(points), 2, labels, classes.clone())?;
    let train = data.subset(&(0..1600).collect::<Vec<_>>(), "train");
    let test = data.subset(&(1600..2000).collect::<Vec<_>>(), "test");

    // 2 → 32 → 32 → 2, ReLU; the class names travel with the network.
    let mut spec = ModelSpec::mlp(2, &[32, 32], Activation::Relu, 2);
    spec.classes = classes;
    let mut network = Network::from_spec(&spec, 7)?;
    let mut optimizer = Optimizer::Adam(Adam::new(0.01));
    let mut trainer = Trainer::new(
        TrainConfig::default()
            .epochs(30)
            .batch_size(32)
            .seed(7)
            .threads(2),
    )?;
    let report = trainer.fit(
        &mut network,
        &mut optimizer,
        Splits::new(&train, &test),
        Hooks::new(),
    )?;
    let last = report.history.last().expect("30 epochs ran");
    println!(
        "test accuracy after {} epochs: {:.4}",
        last.epoch,
        last.test_accuracy.unwrap_or(0.0)
    );

    // Save, load back, predict.
    let path = std::env::temp_dir().join("nabla-circle.safetensors");
    nabla::io::save_network(&path, &network)?;
    let model = Model::load(&path)?;
    for point in [[0.1f32, 0.2], [1.2, -0.9]] {
        let p = model.predict(&point)?;
        let best = if p[0] >= p[1] { 0 } else { 1 };
        println!("{point:?} → {} (p = {:.3})", model.classes()[best], p[best]);
    }
    std::fs::remove_file(&path).ok();
    assert!(
        last.test_accuracy.unwrap_or(0.0) > 0.9,
        "the circle should be learnt"
    );
    Ok(())
}
