//! Embedding and evaluation: the ONNX embedder, `vireid embed|enrol|query|gallery`,
//! `vireid eval` against the numpy reference, `vireid thresholds`.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod adapt_cli;
mod corpus;
mod embed_cli;
mod embed_onnx;
mod eval_cli;
mod eval_dataset;
mod thresholds_cli;
