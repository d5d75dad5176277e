//! `vireid embed` (a folder of crops → `.npy`) and `vireid bench embed`.
