//! Reports: a terminal/Markdown table in the seeds' format (R1, R10, R20, mAP,
//! mINP, in percent), `report.json`, `report.md` and the CMC curve `cmc.png`.

use super::{invalid, Result, ResultExt};
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

use super::metrics::Metrics;

/// A Markdown table, one row per labelled result (percentages, 2 decimals).
pub fn metrics_table(rows: &[(&str, &Metrics)]) -> String {
    let mut out =
        String::from("| Method | R1 | R10 | R20 | mAP | mINP |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (label, m) in rows {
        out.push_str(&format!(
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            100.0 * m.rank(1),
            100.0 * m.rank(10),
            100.0 * m.rank(20),
            100.0 * m.map,
            100.0 * m.minp
        ));
    }
    out
}

/// Everything `report.json` holds.
#[derive(Debug, Serialize)]
pub struct Report {
    pub protocol: String,
    /// `all-search, single-shot`, `v2t`, …: the setting in words.
    pub setting: String,
    pub embedder: String,
    pub flip_tta: bool,
    pub distance: String,
    /// Re-ranking inflates numbers; reports always say whether it was on.
    pub reranking: Option<super::distance::RerankParams>,
    pub num_images: usize,
    pub trials: Vec<TrialReport>,
    pub mean: Metrics,
}

#[derive(Debug, Serialize)]
pub struct TrialReport {
    pub name: String,
    pub seed: Option<u64>,
    pub num_queries: usize,
    pub num_gallery: usize,
    pub metrics: Metrics,
}

impl Report {
    /// The label of the table row: embedder, augmentation and re-ranking spelled out.
    pub fn method_label(&self) -> String {
        let mut label = self.embedder.clone();
        if self.flip_tta {
            label.push_str(" + flip");
        }
        if self.reranking.is_some() {
            label.push_str(" + re-ranking");
        }
        label
    }

    pub fn markdown(&self) -> String {
        let mut md = format!("# vireid evaluation: {} ({})\n\n", self.protocol, self.setting);
        md.push_str(&metrics_table(&[(&self.method_label(), &self.mean)]));
        md.push_str(&format!(
            "\nMean of {} trial(s); percentages. Distance: {}. Flip TTA: {}. Re-ranking: {}. {} images embedded.\n\n",
            self.trials.len(),
            self.distance,
            if self.flip_tta { "yes" } else { "no" },
            match &self.reranking {
                Some(p) => format!(
                    "**yes** (k-reciprocal, k1={}, k2={}, λ={}; inflates numbers, not comparable with plain results)",
                    p.k1, p.k2, p.lambda
                ),
                None => "no".into(),
            },
            self.num_images
        ));
        md.push_str("Ties are broken by gallery order (stable sort).\n\n## Trials\n\n| Trial | Seed | Queries (valid) | Gallery | R1 | R10 | R20 | mAP | mINP |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for t in &self.trials {
            let m = &t.metrics;
            md.push_str(&format!(
                "| {} | {} | {} ({}) | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                t.name,
                t.seed.map(|s| s.to_string()).unwrap_or_else(|| "—".into()),
                t.num_queries,
                m.num_valid_queries,
                t.num_gallery,
                100.0 * m.rank(1),
                100.0 * m.rank(10),
                100.0 * m.rank(20),
                100.0 * m.map,
                100.0 * m.minp
            ));
        }
        md
    }

    /// Writes `report.json`, `report.md` and `cmc.png` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).file(|| format!("cannot create output folder {}", dir.display()))?;
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).file(|| format!("cannot encode {}", json.display()))? + "\n";
        std::fs::write(&json, text).file(|| format!("cannot write {}", json.display()))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown()).file(|| format!("cannot write {}", md.display()))?;
        let label =
            format!("{}: R1 {:.2}%, mAP {:.2}%", self.method_label(), 100.0 * self.mean.rank(1), 100.0 * self.mean.map);
        plot_cmc(&dir.join("cmc.png"), &format!("{} ({})", self.protocol, self.setting), &label, &self.mean.cmc)
    }
}

/// The plots' font, compiled in (DejaVu Sans, assets/fonts/LICENSE-DejaVu.txt):
/// no fontconfig or freetype is needed where reports are drawn (the portable build).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if !ok {
        invalid!("the compiled-in plot font (assets/fonts/DejaVuSans.ttf) is not a valid font");
    }
    Ok(())
}

/// The CMC curve (rank 1 … len) as a PNG.
pub fn plot_cmc(path: &Path, title: &str, label: &str, cmc: &[f64]) -> Result<()> {
    register_font()?;
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (800, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("CMC — {title}"), ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(1f64..(cmc.len().max(2) as f64), 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_desc("rank")
            .y_desc("matching rate (%)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                cmc.iter().enumerate().map(|(i, v)| ((i + 1) as f64, 100.0 * v)),
                BLUE.stroke_width(2),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(
            cmc.iter().enumerate().map(|(i, v)| Circle::new(((i + 1) as f64, 100.0 * v), 3, BLUE.filled())),
        )?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| super::EvalError::File {
        what: format!("cannot draw CMC plot {}", path.display()),
        source: e.to_string().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_plot() {
        let m =
            Metrics { cmc: (1..=20).map(|r| r as f64 / 20.0).collect(), map: 0.5, minp: 0.25, num_valid_queries: 3 };
        let t = metrics_table(&[("x", &m)]);
        assert!(t.contains("| x | 5.00 | 50.00 | 100.00 | 50.00 | 25.00 |"), "{t}");
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("cmc.png");
        plot_cmc(&png, "test", "x", &m.cmc).unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (800, 560));
        // Not blank: the curve and text put non-white pixels on it.
        assert!(img.to_rgb8().pixels().filter(|p| p.0 != [255, 255, 255]).count() > 1000);
    }
}
