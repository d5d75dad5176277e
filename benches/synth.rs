//! Synthetic crop throughput: `cargo bench --bench synth`.
//!
//! The target is ≥ 300 crops/s on a 2-core machine (SYSU-layout 96×192 crops,
//! rendered and JPEG-encoded, on all cores through rayon as `vireid synth sysu`
//! does). The peer in the same run is one crop on one core, so the parallel
//! figure can be read as a ratio against it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use vireid::synth::crop::{render_crop, CropSensor};
use vireid::synth::dataset::SYSU_CAMERAS;
use vireid::synth::identity::Identity;
use vireid::synth::rng_for;

fn crop_jpeg(id: u32, k: u32) -> usize {
    let person = Identity::generate(1, id);
    let (_, sensor) = SYSU_CAMERAS[(k % 6) as usize];
    let mut rng = rng_for(1, &[id as u64, k as u64]);
    let img = render_crop(&person, sensor, 96, 192, &mut rng);
    let mut buf = Vec::with_capacity(16 << 10);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90).encode_image(&img).unwrap();
    buf.len()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("synth_crops");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_crop_one_core", |b| {
        let mut k = 0;
        b.iter(|| {
            k += 1;
            crop_jpeg(k % 50 + 1, k)
        })
    });
    const BATCH: u32 = 120;
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("batch_120_crops_all_cores", |b| {
        b.iter(|| (0..BATCH).into_par_iter().map(|k| crop_jpeg(k % 50 + 1, k)).sum::<usize>())
    });
    let _ = CropSensor::RgbNight;
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
