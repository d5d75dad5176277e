//! The learned embedder: an ONNX model run by ONNX Runtime (`ort`, loaded
//! dynamically from `[embed].ort_library` / `ORT_DYLIB_PATH`, see
//! [`crate::onnx_runtime`]).
//!
//! Execution providers come from `[embed].providers` in order (CPU is always
//! the last resort inside ONNX Runtime). A provider that fails to register is
//! an error or a logged fallback per `[embed].on_provider_failure` — we register
//! each one ourselves with `error_on_failure()` so ort never swallows it.

use ndarray::Array2;
use ort::session::Session;
use ort::value::{Tensor, ValueType};
use std::collections::HashMap;
use std::path::Path;

use super::metadata::{ModalityHandling, ModelContract, MODALITY_INPUT_NAME};
use super::preprocess::batch_to_nchw;
use super::{
    l2_normalize_rows, EmbedConfig, EmbedError, EmbedResult, Embedder, ExecutionProviderKind, ProviderFailure,
};
use crate::core::Crop;
use crate::core::Modality;

/// Reads all `metadata_props` of a loaded session.
fn read_metadata(session: &Session, path: &Path) -> EmbedResult<HashMap<String, String>> {
    let meta = session.metadata().map_err(|e| {
        EmbedError::Model(format!("embedding model {}: cannot read the model's metadata: {e}", path.display()))
    })?;
    let mut props = HashMap::new();
    let keys = meta.custom_keys().map_err(|e| {
        EmbedError::Model(format!("embedding model {}: cannot list the model's metadata keys: {e}", path.display()))
    })?;
    for key in keys {
        if let Some(v) = meta.custom(&key) {
            props.insert(key, v);
        }
    }
    Ok(props)
}

/// Which providers a session actually got, for logs and reports.
#[derive(Debug, Clone)]
pub struct ProviderReport {
    pub registered: Vec<ExecutionProviderKind>,
    pub failed: Vec<(ExecutionProviderKind, String)>,
}

/// An ONNX embedding model ready to run.
pub struct OnnxEmbedder {
    session: Session,
    name: String,
    contract: ModelContract,
    input_name: String,
    modality_input: Option<String>,
    max_batch: usize,
    pub providers: ProviderReport,
}

fn register_providers(
    mut builder: ort::session::builder::SessionBuilder,
    config: &EmbedConfig,
    contract: Option<&ModelContract>,
    input_name: Option<&str>,
    model_stem: &str,
) -> EmbedResult<(ort::session::builder::SessionBuilder, ProviderReport)> {
    let mut report = ProviderReport { registered: vec![], failed: vec![] };
    for kind in &config.providers {
        let dispatch = match kind {
            ExecutionProviderKind::Cpu => {
                // ONNX Runtime always has CPU as the final fallback; nothing to register.
                report.registered.push(*kind);
                continue;
            }
            ExecutionProviderKind::Cuda => {
                ort::ep::CUDA::default().with_device_id(config.device_id).build().error_on_failure()
            }
            ExecutionProviderKind::Tensorrt => {
                let cache = config.engine_cache_dir.join("trt-cache");
                let mut trt = ort::ep::TensorRT::default()
                    .with_device_id(config.device_id)
                    // INT8 for the Q/DQ graph; FP16 for layers TensorRT cannot run in INT8.
                    .with_int8(true)
                    .with_fp16(true)
                    .with_engine_cache(true)
                    .with_engine_cache_path(cache.display())
                    .with_engine_cache_prefix(model_stem)
                    .with_timing_cache(true)
                    .with_timing_cache_path(cache.display());
                if let (Some(c), Some(input)) = (contract, input_name) {
                    // One optimisation profile covering the whole batch range.
                    let shape = |n: usize| format!("{input}:{n}x3x{}x{}", c.input_height, c.input_width);
                    trt = trt
                        .with_profile_min_shapes(shape(1))
                        .with_profile_opt_shapes(shape(config.max_batch.div_ceil(2).max(1)))
                        .with_profile_max_shapes(shape(config.max_batch));
                }
                if let Err(e) = std::fs::create_dir_all(&cache) {
                    tracing::warn!("cannot create TensorRT cache dir {}: {e}", cache.display());
                }
                trt.build().error_on_failure()
            }
        };
        match builder.with_execution_providers([dispatch]) {
            Ok(b) => {
                builder = b;
                report.registered.push(*kind);
                tracing::info!("execution provider {kind} registered");
            }
            Err(e) => {
                let msg = e.to_string();
                if config.on_provider_failure == ProviderFailure::Error {
                    return Err(EmbedError::Provider(format!(
                        "execution provider {kind} failed to register: {msg} (this ONNX Runtime build or machine lacks it; \
                         remove it from [embed].providers or set embed.on_provider_failure = \"fallback\")"
                    )));
                }
                tracing::warn!(
                    "execution provider {kind} failed to register, falling back to the next provider: {msg}"
                );
                report.failed.push((*kind, msg));
                builder = e.recover();
            }
        }
    }
    Ok((builder, report))
}

fn new_builder(config: &EmbedConfig) -> EmbedResult<ort::session::builder::SessionBuilder> {
    let env = crate::onnx_runtime::environment(config.ort_library.as_deref())?;
    let mut b = Session::builder(env)
        .map_err(|e| EmbedError::Model(format!("cannot create an ONNX Runtime session builder: {e}")))?;
    if config.intra_threads > 0 {
        b = b
            .with_intra_threads(config.intra_threads)
            .map_err(|e| EmbedError::Model(format!("cannot set embed.intra_threads: {e}")))?;
    }
    Ok(b)
}

fn tensor_dims(vt: &ValueType) -> Option<Vec<i64>> {
    match vt {
        ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
        _ => None,
    }
}

impl OnnxEmbedder {
    /// Loads and checks a model. Errors name the file and what is wrong with it.
    pub fn open(path: &Path, config: &EmbedConfig) -> EmbedResult<OnnxEmbedder> {
        let meta = std::fs::metadata(path).map_err(|e| {
            let fix = if path == Path::new(super::DEFAULT_MODEL) {
                super::default_model_missing()
            } else {
                "check the path (see engines/README.md)".to_string()
            };
            EmbedError::Model(format!("embedding model {} cannot be read: {fix}: {e}", path.display()))
        })?;
        if !meta.is_file() {
            return Err(EmbedError::Model(format!("embedding model {} is not a file", path.display())));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
        let load = |builder: ort::session::builder::SessionBuilder| -> EmbedResult<Session> {
            let mut builder = builder;
            builder.commit_from_file(path).map_err(|e| {
                EmbedError::Model(format!(
                    "embedding model {} is not a loadable ONNX model (truncated, corrupt or not ONNX?): {e}",
                    path.display()
                ))
            })
        };
        let contract_error =
            |e: super::metadata::ContractError| EmbedError::Model(format!("embedding model {}: {e}", path.display()));
        let needs_profile = config.providers.contains(&ExecutionProviderKind::Tensorrt);
        let (session, providers) = if needs_profile {
            // TensorRT's optimisation profile needs the input name and size: read them from a CPU session first.
            let probe = load(new_builder(config)?)?;
            let contract = ModelContract::resolve(&read_metadata(&probe, path)?, config).map_err(contract_error)?;
            let input = probe.inputs().first().map(|i| i.name().to_string());
            drop(probe);
            let (b, report) =
                register_providers(new_builder(config)?, config, Some(&contract), input.as_deref(), &stem)?;
            (load(b)?, report)
        } else {
            let (b, report) = register_providers(new_builder(config)?, config, None, None, &stem)?;
            (load(b)?, report)
        };
        let contract = ModelContract::resolve(&read_metadata(&session, path)?, config).map_err(contract_error)?;
        let (input_name, modality_input) = Self::check_graph(&session, &contract).map_err(|problem| {
            EmbedError::Model(format!(
                "embedding model {} does not match the vireid input contract (engines/README.md): {problem}",
                path.display()
            ))
        })?;
        tracing::info!(
            model = %path.display(),
            input = format!("{}x{}", contract.input_height, contract.input_width),
            dim = contract.embedding_dim,
            method = contract.method.as_deref().unwrap_or("?"),
            "embedding model loaded"
        );
        Ok(OnnxEmbedder {
            session,
            name: stem,
            contract,
            input_name,
            modality_input,
            max_batch: config.max_batch,
            providers,
        })
    }

    /// Checks the graph's inputs/outputs against the contract; returns the image
    /// input's name and the modality input's name if the model has one.
    fn check_graph(session: &Session, c: &ModelContract) -> Result<(String, Option<String>), String> {
        let inputs = session.inputs();
        let image = inputs
            .iter()
            .find(|i| i.name() != MODALITY_INPUT_NAME)
            .ok_or_else(|| "the graph has no image input".to_string())?;
        let dims = tensor_dims(image.dtype()).ok_or_else(|| format!("input '{}' is not a tensor", image.name()))?;
        let want = [-1i64, 3, c.input_height as i64, c.input_width as i64];
        let fits = dims.len() == 4 && dims.iter().zip(want).skip(1).all(|(d, w)| *d < 0 || *d == w);
        if !fits {
            return Err(format!(
                "input '{}' has shape {dims:?}, expected [N,3,{},{}]",
                image.name(),
                c.input_height,
                c.input_width
            ));
        }
        let modality_input = inputs.iter().find(|i| i.name() == MODALITY_INPUT_NAME).map(|i| i.name().to_string());
        match (c.modality_handling, &modality_input) {
            (ModalityHandling::PerModality, None) => {
                return Err(format!(
                    "vireid.modality_handling is per_modality but the graph has no '{MODALITY_INPUT_NAME}' input"
                ))
            }
            (ModalityHandling::Shared, Some(_)) => {
                return Err(format!(
                    "the graph has a '{MODALITY_INPUT_NAME}' input but vireid.modality_handling is shared"
                ))
            }
            _ => {}
        }
        if inputs.len() > 1 + modality_input.is_some() as usize {
            return Err(format!(
                "the graph has {} inputs; expected the image input (and '{MODALITY_INPUT_NAME}' for per_modality)",
                inputs.len()
            ));
        }
        let out = session.outputs().first().ok_or_else(|| "the graph has no output".to_string())?;
        let odims = tensor_dims(out.dtype()).ok_or_else(|| format!("output '{}' is not a tensor", out.name()))?;
        if odims.len() != 2 || (odims[1] >= 0 && odims[1] as usize != c.embedding_dim) {
            return Err(format!(
                "output '{}' has shape {odims:?}, expected [N,{}] (vireid.embedding_dim)",
                out.name(),
                c.embedding_dim
            ));
        }
        Ok((image.name().to_string(), modality_input))
    }

    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    fn run_chunk(&mut self, crops: &[Crop]) -> EmbedResult<Array2<f32>> {
        let fail = EmbedError::Inference;
        let c = &self.contract;
        let n = crops.len();
        let data = batch_to_nchw(crops, c);
        let shape = [n, 3, c.input_height as usize, c.input_width as usize];
        let image =
            Tensor::from_array((shape, data)).map_err(|e| fail(format!("cannot build the input tensor: {e}")))?;
        let outputs = if let Some(mod_name) = &self.modality_input {
            let flags: Vec<f32> =
                crops.iter().map(|cr| if cr.modality == Modality::Thermal { 1.0 } else { 0.0 }).collect();
            let modality =
                Tensor::from_array(([n], flags)).map_err(|e| fail(format!("cannot build the modality tensor: {e}")))?;
            self.session.run(ort::inputs![self.input_name.as_str() => image, mod_name.as_str() => modality])
        } else {
            self.session.run(ort::inputs![self.input_name.as_str() => image])
        }
        .map_err(|e| fail(format!("ONNX Runtime failed to run model {}: {e}", self.name)))?;
        let (oshape, values) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| fail(format!("model output is not float32: {e}")))?;
        let d = c.embedding_dim;
        if oshape.len() != 2 || oshape[0] as usize != n || oshape[1] as usize != d {
            return Err(fail(format!("model {} returned shape {:?}, expected [{n},{d}]", self.name, &oshape[..])));
        }
        let mut feats = Array2::from_shape_vec((n, d), values.to_vec()).map_err(|e| fail(e.to_string()))?;
        if feats.iter().any(|v| !v.is_finite()) {
            return Err(fail(format!(
                "model {} produced non-finite features (NaN/inf): the model or its input contract is broken",
                self.name
            )));
        }
        l2_normalize_rows(&mut feats);
        Ok(feats)
    }
}

impl Embedder for OnnxEmbedder {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn dim(&self) -> usize {
        self.contract.embedding_dim
    }

    fn embed(&mut self, crops: &[Crop]) -> EmbedResult<Array2<f32>> {
        let d = self.contract.embedding_dim;
        let mut out = Array2::zeros((crops.len(), d));
        let mut row = 0;
        for chunk in crops.chunks(self.max_batch.max(1)) {
            let f = self.run_chunk(chunk)?;
            out.slice_mut(ndarray::s![row..row + chunk.len(), ..]).assign(&f);
            row += chunk.len();
        }
        Ok(out)
    }
}
