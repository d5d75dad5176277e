//! Synthetic dual-spectrum people, datasets and scene videos.
