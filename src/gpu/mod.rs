//! CUDA kernels through cudarc (feature `cuda`); probed before use.
