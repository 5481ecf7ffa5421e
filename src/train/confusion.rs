//! The confusion matrix of a model on a dataset: how often each true class was predicted as
//! each class.

use crate::data::Dataset;
use crate::error::NablaError;
use crate::kernels::softmax::argmax;
use crate::nn::{Module, Network};
use crate::tensor::Tensor;

/// `m[true][predicted]`: samples of class `true` that `model` predicts as `predicted`
/// (a square matrix over the model's outputs).
///
/// ```
/// use nabla::data::Dataset;
/// use nabla::kernels::activation::Activation;
/// use nabla::nn::{ModelSpec, Network};
/// let model = Network::from_spec(&ModelSpec::mlp(2, &[4], Activation::Relu, 2), 1).unwrap();
/// let m = nabla::train::confusion_matrix(&model, &Dataset::new(
///     "tiny", nabla::data::Features::F32(vec![0.0, 1.0, 1.0, 0.0]), 2, vec![0, 1],
///     vec!["a".into(), "b".into()]).unwrap()).unwrap();
/// assert_eq!(m.iter().flatten().sum::<usize>(), 2);
/// ```
pub fn confusion_matrix<M: Module>(
    model: &Network<M>,
    data: &Dataset,
) -> Result<Vec<Vec<usize>>, NablaError> {
    let classes = model.outputs();
    let mut m = vec![vec![0usize; classes]; classes];
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(super::eval_chunk_rows(model, data)?) {
        let mut buf = vec![0.0; chunk.len() * data.dim()];
        data.gather(chunk, &mut buf);
        let x = Tensor::from_vec(chunk.len(), data.dim(), buf)?;
        let z = model.logits(&x)?;
        for (row, &i) in z.data().chunks_exact(classes.max(1)).zip(chunk) {
            let truth = data.labels()[i] as usize;
            if truth < classes {
                m[truth][argmax(row)] += 1;
            }
        }
    }
    Ok(m)
}
