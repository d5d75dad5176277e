//! Cross-modal adaptation learnt on the box from its own harvest
//! (`vireid adapt`): no labels, only what the box knows from geometry and time.
//!
//! - **Genuine pairs**: a co-observed RGB track and thermal track (the pair
//!   stage saw one person in both cameras at the same place and time).
//! - **Impostor pairs**: an RGB track and a thermal track seen at the same
//!   time by the box that are *not* co-observed — two different people.
//!
//! The adapter keeps the frozen embedder and re-weights its feature
//! dimensions: a dimension counts in proportion to how much closer the two
//! modalities' views of one person are than those of two people,
//!
//! ```text
//! G_d = mean over genuine pairs of (r − t)_d²
//! I_d = mean over impostor pairs of the same
//! ŵ_d = max(ε, (I_d − G_d) / I_d)
//! w_d = 1 + (ŵ_d − 1) · n / (n + n₀)
//! f'  = normalise((normalise(f) − μ_modality) ⊙ w),  μ = 0
//! ```
//!
//! with n the number of genuine pairs and n₀ = [`PRIOR_PAIRS`]: with few
//! pairs the weights stay near 1 (a handful of people says little about
//! which dimensions carry identity across modalities). A dimension on which
//! the modalities differ for everybody has G ≈ I and so a small weight: the
//! modality gap is weighed down, not subtracted. Subtracting each modality's
//! mean harvested feature (μ, which the format keeps) cost 4–5 R1 points on
//! people nobody harvested with the ImageNet MobileNetV2 and 3 with the
//! default model (means of track features from other scenes are not the
//! mean of a new scene's crops), so [`Adapter::fit`] leaves μ at zero; models
//! adapted before keep theirs and still load, migrate and run. It has one weight per
//! dimension, so it cannot memorise the few hundred people a box has seen:
//! the fuller maps we measured (CCA, ridge regression, contrastive low-rank
//! and MLP heads) all did worse on people they had not seen
//! (`bench/adapt_probe/`, BENCHMARKS.md). ε > 0 keeps it
//! invertible, so a gallery can move its stored features from one adapter
//! to the next ([`Adapter::migrate`]).
//!
//! The adapter is appended to the ONNX graph ([`Adapter::append_to`]), so
//! ONNX Runtime and TensorRT run model + adapter as one graph, and the file
//! says what it is (`vireid.adaptation`).

use super::onnx_graph::{Attribute, GraphError, Initializer, Model, Node, TensorData};
use crate::core::Modality;

/// Metadata key an adapted model carries (and a model to be adapted must not).
pub const ADAPTATION_KEY: &str = "vireid.adaptation";
/// The smallest weight: keeps the map invertible.
pub const MIN_WEIGHT: f32 = 0.01;
/// How many genuine pairs count as much as the prior "every dimension
/// weighs 1" (the shrinkage n₀ in the module doc). Chosen on held-out
/// validation scenes among 30, 100 and 300 (`bench/adapt_probe/centring.py`).
pub const PRIOR_PAIRS: f64 = 30.0;
const PREFIX: &str = "vireid_adapt";

/// Why an adapter cannot be fitted or written.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("{0}")]
    TooFew(String),
    #[error("feature dimensions differ: {0}")]
    Dimension(String),
    #[error("{0}")]
    Model(String),
}

impl From<GraphError> for AdaptError {
    fn from(e: GraphError) -> Self {
        AdaptError::Model(e.0)
    }
}

/// A pair of track features: (RGB, thermal), each L2-normalised.
pub type FeaturePair<'a> = (&'a [f32], &'a [f32]);

/// The fitted map (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub mean_rgb: Vec<f32>,
    pub mean_thermal: Vec<f32>,
    pub weight: Vec<f32>,
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

impl Adapter {
    /// Fits the weights from genuine and impostor pairs (no centring: see the module doc).
    pub fn fit(genuine: &[FeaturePair], impostors: &[FeaturePair], min_pairs: usize) -> Result<Adapter, AdaptError> {
        if genuine.len() < min_pairs {
            return Err(AdaptError::TooFew(format!(
                "{} co-observed pairs harvested, at least {min_pairs} needed: let the box see more people in both cameras \
                 (or lower --min-pairs / [adapt] min_pairs)",
                genuine.len()
            )));
        }
        if impostors.len() < min_pairs {
            return Err(AdaptError::TooFew(format!(
                "{} impostor pairs harvested (RGB and thermal tracks of different people at the same time), at least \
                 {min_pairs} needed: the box has to see several people at once now and then",
                impostors.len()
            )));
        }
        let dim = genuine[0].0.len();
        if let Some((r, t)) = genuine.iter().chain(impostors).find(|(r, t)| r.len() != dim || t.len() != dim) {
            return Err(AdaptError::Dimension(format!(
                "{dim} vs {} / {}: the harvest mixes models; clear it",
                r.len(),
                t.len()
            )));
        }
        let spread = |pairs: &[FeaturePair]| {
            let mut s = vec![0f64; dim];
            for (r, t) in pairs {
                for (s, (r, t)) in s.iter_mut().zip(r.iter().zip(t.iter())) {
                    *s += f64::from(r - t).powi(2) / pairs.len() as f64;
                }
            }
            s
        };
        let (g, i) = (spread(genuine), spread(impostors));
        let trust = genuine.len() as f64 / (genuine.len() as f64 + PRIOR_PAIRS);
        let weight = g
            .iter()
            .zip(&i)
            .map(|(g, i)| {
                let fisher = (if *i > 0.0 { (i - g) / i } else { 0.0 }).max(f64::from(MIN_WEIGHT));
                (1.0 + (fisher - 1.0) * trust) as f32
            })
            .collect();
        Ok(Adapter { mean_rgb: vec![0.0; dim], mean_thermal: vec![0.0; dim], weight })
    }

    /// mean_rgb ‖ mean_thermal ‖ weight, f32 little-endian (how the gallery stores it).
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.mean_rgb, &self.mean_thermal, &self.weight]
            .iter()
            .flat_map(|v| v.iter())
            .flat_map(|x| x.to_le_bytes())
            .collect()
    }

    /// The inverse of [`Adapter::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Adapter, AdaptError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(12) {
            return Err(AdaptError::Model(format!(
                "a stored adapter of {} bytes is not 3 × dim f32 values",
                bytes.len()
            )));
        }
        let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let d = v.len() / 3;
        Ok(Adapter { mean_rgb: v[..d].to_vec(), mean_thermal: v[d..2 * d].to_vec(), weight: v[2 * d..].to_vec() })
    }

    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    fn mean(&self, modality: Modality) -> &[f32] {
        match modality {
            Modality::Rgb => &self.mean_rgb,
            Modality::Thermal => &self.mean_thermal,
        }
    }

    /// Maps a base-model feature (any norm) to the adapted space, in place.
    pub fn apply(&self, feature: &mut [f32], modality: Modality) {
        normalise(feature);
        for ((x, m), w) in feature.iter_mut().zip(self.mean(modality)).zip(&self.weight) {
            *x = (*x - m) * w;
        }
        normalise(feature);
    }

    /// The base-model feature (unit norm) that [`apply`](Self::apply) maps to `adapted`.
    pub fn invert(&self, adapted: &mut [f32], modality: Modality) {
        // adapted = (x − m) ⊙ w / s for some s > 0 with ‖x‖ = 1: z = adapted / w, x = m + s z,
        // and ‖m + s z‖² = 1 fixes s (‖m‖ < 1: m is zero or a mean of unit vectors).
        let m = self.mean(modality);
        let z: Vec<f64> = adapted.iter().zip(&self.weight).map(|(a, w)| f64::from(*a) / f64::from(*w)).collect();
        let zz: f64 = z.iter().map(|v| v * v).sum();
        let mz: f64 = z.iter().zip(m).map(|(a, b)| a * f64::from(*b)).sum();
        let mm: f64 = m.iter().map(|v| f64::from(*v).powi(2)).sum();
        let s = (-mz + (mz * mz - zz * (mm - 1.0)).max(0.0).sqrt()) / zz.max(1e-300);
        for ((out, zi), mi) in adapted.iter_mut().zip(&z).zip(m) {
            *out = (f64::from(*mi) + s * zi) as f32;
        }
        normalise(adapted);
    }

    /// Moves a stored feature from the space of `from` (None: the base model) to that of `to`.
    pub fn migrate(feature: &mut [f32], modality: Modality, from: Option<&Adapter>, to: Option<&Adapter>) {
        if let Some(a) = from {
            a.invert(feature, modality);
        }
        if let Some(a) = to {
            a.apply(feature, modality);
        }
    }

    /// Appends the adapter to `model`'s graph (after its first output) and
    /// records `description` under [`ADAPTATION_KEY`]. A shared-stem model
    /// gains the `modality` input and becomes `per_modality`.
    pub fn append_to(&self, model: &mut Model, description: &str) -> Result<(), AdaptError> {
        if let Some((_, v)) = model.metadata().into_iter().find(|(k, _)| k == ADAPTATION_KEY) {
            return Err(AdaptError::Model(format!(
                "it is already adapted ({v}): adapt the model it was made from, not its adapted copy"
            )));
        }
        let features = model
            .output_names()
            .into_iter()
            .next()
            .ok_or_else(|| AdaptError::Model("its graph has no output".into()))?;
        if !model.input_names().iter().any(|n| n == "modality") {
            model.add_float_vector_input("modality");
            model.set_metadata("vireid.modality_handling", "per_modality");
        }
        let d = self.dim() as i64;
        let n = |s: &str| format!("{PREFIX}/{s}");
        let row = |name: &str, v: Vec<f32>| Initializer { name: n(name), dims: vec![1, d], data: TensorData::Float(v) };
        let delta: Vec<f32> = self.mean_thermal.iter().zip(&self.mean_rgb).map(|(t, r)| t - r).collect();
        model.add_initializer(&row("mean_rgb", self.mean_rgb.clone()));
        model.add_initializer(&row("mean_delta", delta));
        model.add_initializer(&row("weight", self.weight.clone()));
        model.add_initializer(&Initializer { name: n("column"), dims: vec![2], data: TensorData::Int64(vec![-1, 1]) });
        model.add_initializer(&Initializer { name: n("eps"), dims: vec![], data: TensorData::Float(vec![1e-12]) });
        let node = |name: &str, op: &str, inputs: &[String], attributes: Vec<Attribute>| Node {
            name: n(name),
            op_type: op.into(),
            inputs: inputs.to_vec(),
            outputs: vec![n(name)],
            attributes,
        };
        let out = n("features");
        // ReduceL2 took its axes as an attribute until opset 18, as an input since.
        let opset = model.opset().ok_or_else(|| AdaptError::Model("it imports no ai.onnx operator set".into()))?;
        let norm = if opset < 18 {
            node(
                "norm",
                "ReduceL2",
                std::slice::from_ref(&features),
                vec![Attribute::Ints("axes", vec![1]), Attribute::Int("keepdims", 1)],
            )
        } else {
            model.add_initializer(&Initializer { name: n("axes"), dims: vec![1], data: TensorData::Int64(vec![1]) });
            node("norm", "ReduceL2", &[features.clone(), n("axes")], vec![Attribute::Int("keepdims", 1)])
        };
        // x = f / max(‖f‖, ε); mean = μ_rgb + modality·(μ_thermal − μ_rgb); y = (x − mean) ⊙ w
        let nodes = [
            norm,
            node("norm_eps", "Max", &[n("norm"), n("eps")], vec![]),
            node("x", "Div", &[features, n("norm_eps")], vec![]),
            node("m", "Reshape", &[String::from("modality"), n("column")], vec![]),
            node("md", "Mul", &[n("m"), n("mean_delta")], vec![]),
            node("mean", "Add", &[n("md"), n("mean_rgb")], vec![]),
            node("centred", "Sub", &[n("x"), n("mean")], vec![]),
            Node {
                name: n("weighted"),
                op_type: "Mul".into(),
                inputs: vec![n("centred"), n("weight")],
                outputs: vec![out.clone()],
                attributes: vec![],
            },
        ];
        for node in &nodes {
            model.add_node(node);
        }
        model.replace_first_output(&out)?;
        model.set_metadata(ADAPTATION_KEY, description);
        Ok(())
    }

    /// The adapter inside an adapted model, or None for a model without one.
    pub fn read_from(model: &Model) -> Result<Option<Adapter>, AdaptError> {
        let row = |name: &str| -> Result<Option<Vec<f32>>, AdaptError> {
            Ok(match model.initializer(&format!("{PREFIX}/{name}"))? {
                Some(Initializer { data: TensorData::Float(v), .. }) => Some(v),
                Some(_) => return Err(AdaptError::Model(format!("{PREFIX}/{name} is not a float tensor"))),
                None => None,
            })
        };
        match (row("mean_rgb")?, row("mean_delta")?, row("weight")?) {
            (Some(mean_rgb), Some(delta), Some(weight))
                if mean_rgb.len() == weight.len() && delta.len() == weight.len() =>
            {
                let mean_thermal = mean_rgb.iter().zip(&delta).map(|(r, d)| r + d).collect();
                Ok(Some(Adapter { mean_rgb, mean_thermal, weight }))
            }
            (None, None, None) => Ok(None),
            _ => Err(AdaptError::Model("its adapter tensors are incomplete or of different sizes".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let mut v = v;
        normalise(&mut v);
        v
    }

    /// Dimension 0 carries identity in both modalities, dimension 1 is
    /// modality-specific noise, dimension 2 is shared by everybody.
    /// (RGB feature, thermal feature) pairs.
    type Pairs = Vec<(Vec<f32>, Vec<f32>)>;

    fn pairs() -> (Pairs, Pairs) {
        let person = |i: usize| (i as f32 * 0.7).sin();
        let noise = |i: usize, k: usize| ((i * 31 + k * 17) as f32 * 1.3).cos();
        let g = (0..40)
            .map(|i| (unit(vec![person(i), noise(i, 0), 1.0]), unit(vec![person(i), noise(i, 1), 1.0])))
            .collect();
        let imp = (0..40)
            .map(|i| (unit(vec![person(i), noise(i, 2), 1.0]), unit(vec![person(i + 3), noise(i, 3), 1.0])))
            .collect();
        (g, imp)
    }

    fn view(v: &[(Vec<f32>, Vec<f32>)]) -> Vec<FeaturePair<'_>> {
        v.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect()
    }

    #[test]
    fn weights_favour_what_the_modalities_share_per_person() {
        let (g, i) = pairs();
        // many pairs (each person repeated): the weights are nearly the Fisher ratios
        let repeat = |v: &Pairs| -> Pairs { (0..100).flat_map(|_| v.iter().cloned()).collect() };
        let (many_g, many_i) = (repeat(&g), repeat(&i));
        let a = Adapter::fit(&view(&many_g), &view(&many_i), 10).unwrap();
        assert!(a.weight[0] > 0.5, "identity dimension kept: {:?}", a.weight);
        assert!(a.weight[1] <= 0.1, "modality noise dropped: {:?}", a.weight);
        assert!(a.weight.iter().all(|&w| w >= MIN_WEIGHT));
        // hand-computed: equal genuine/impostor spread gives ŵ = ε, shrunk by n / (n + n₀)
        let same = Adapter::fit(&view(&g), &view(&g), 10).unwrap();
        let expected = 1.0 + (f64::from(MIN_WEIGHT) - 1.0) * 40.0 / (40.0 + PRIOR_PAIRS);
        assert!(same.weight.iter().all(|&w| (f64::from(w) - expected).abs() < 1e-6), "{:?}", same.weight);
        // few pairs: the same direction, pulled towards 1
        let few = Adapter::fit(&view(&g), &view(&i), 10).unwrap();
        assert!(few.weight[1] > a.weight[1] && few.weight[1] < 1.0 && few.weight[0] >= a.weight[0] - 1e-6);
    }

    #[test]
    fn a_modality_gap_shared_by_everybody_is_weighed_down_not_subtracted() {
        // dimension 0 carries identity; thermal features sit 0.8 higher on dimension 1 for everybody
        let person = |i: usize| (i as f32 * 0.7).sin();
        let rgb = |i: usize| unit(vec![person(i), 0.0]);
        let thermal = |i: usize| unit(vec![person(i), 0.8]);
        let g: Pairs = (0..200).map(|i| (rgb(i), thermal(i))).collect();
        let imp: Pairs = (0..200).map(|i| (rgb(i), thermal(i + 3))).collect();
        let a = Adapter::fit(&view(&g), &view(&imp), 10).unwrap();
        assert!(a.mean_rgb.iter().chain(&a.mean_thermal).all(|&m| m == 0.0), "fit does not centre: {a:?}");
        assert!(a.weight[1] < 0.2 && a.weight[0] > 0.8, "{:?}", a.weight);
        let cosine = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        let (mut r, mut t) = (rgb(7), thermal(7));
        let before = cosine(&r, &t);
        a.apply(&mut r, Modality::Rgb);
        a.apply(&mut t, Modality::Thermal);
        assert!(cosine(&r, &t) > before + 0.1, "one person's two views come closer: {before} -> {}", cosine(&r, &t));
    }

    #[test]
    fn too_few_pairs_or_mixed_dimensions_are_clear_errors() {
        let (g, i) = pairs();
        let e = Adapter::fit(&view(&g[..3]), &view(&i), 10).unwrap_err().to_string();
        assert!(e.contains("3 co-observed pairs") && e.contains("at least 10"), "{e}");
        let e = Adapter::fit(&view(&g), &view(&i[..2]), 10).unwrap_err().to_string();
        assert!(e.contains("2 impostor pairs"), "{e}");
        let odd = [(vec![1.0f32, 0.0], vec![1.0f32, 0.0])];
        let mut mixed = view(&g);
        mixed.push((odd[0].0.as_slice(), odd[0].1.as_slice()));
        assert!(Adapter::fit(&mixed, &view(&i), 10).unwrap_err().to_string().contains("mixes models"));
    }

    #[test]
    fn invert_undoes_apply_and_migrate_moves_between_adapters() {
        let (g, i) = pairs();
        let fitted = Adapter::fit(&view(&g), &view(&i), 10).unwrap();
        // models adapted before fit stopped centring carry modality means
        let centred = Adapter { mean_rgb: vec![0.2, 0.1, 0.5], mean_thermal: vec![-0.1, 0.3, 0.4], ..fitted.clone() };
        for (a, modality) in [(&fitted, Modality::Rgb), (&fitted, Modality::Thermal), (&centred, Modality::Thermal)] {
            let b = Adapter { weight: a.weight.iter().map(|w| (w * 0.5 + 0.3).min(1.0)).collect(), ..a.clone() };
            let x = unit(vec![0.3, -0.5, 0.8]);
            let mut y = x.clone();
            a.apply(&mut y, modality);
            let mut back = y.clone();
            a.invert(&mut back, modality);
            for (p, q) in back.iter().zip(&x) {
                assert!((p - q).abs() < 1e-5, "{back:?} vs {x:?}");
            }
            let mut moved = y.clone();
            Adapter::migrate(&mut moved, modality, Some(a), Some(&b));
            let mut direct = x.clone();
            b.apply(&mut direct, modality);
            for (p, q) in moved.iter().zip(&direct) {
                assert!((p - q).abs() < 1e-5);
            }
        }
    }
}
