//! `vireid thresholds`: same- and cross-modality thresholds from labelled data.
