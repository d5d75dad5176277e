//! Test support for the HTTP API: an in-memory gallery behind the `GalleryApi`
//! trait (the HTTP layer is what these tests check; the SQLite gallery has its
//! own tests), a server on a free loopback port, and a small HTTP/1.1 client
//! over a plain TcpStream so requests go through a real socket.
#![allow(dead_code)]

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use vireid::api::*;
use vireid::core::Modality;

pub const TOKEN: &str = "test-token-0123456789abcdef";

#[derive(Clone)]
struct Exemplar {
    identity: u64,
    modality: Modality,
    feature: Vec<f32>,
}

#[derive(Default)]
struct Inner {
    identities: BTreeMap<u64, (Option<String>, f64, f64)>,
    sightings: Vec<SightingBody>,
    crops: BTreeMap<u64, (u64, Modality, Vec<u8>)>,
    exemplars: Vec<Exemplar>,
    next_id: u64,
}

/// Features here are an 8×16 grey thumbnail, L2-normalised: enough for
/// "the same image matches itself best" without a model.
fn feature(img: &DynamicImage) -> Vec<f32> {
    let g = img.resize_exact(8, 16, image::imageops::FilterType::Triangle).to_luma8();
    let mut v: Vec<f32> = g.pixels().map(|p| p.0[0] as f32 + 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

pub fn png(img: &DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn solid(w: u32, h: u32, rgb: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb(rgb)))
}

/// A striped person-sized image; `seed` varies the pattern.
pub fn striped(seed: u8) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(32, 64, |x, y| {
        let v = ((y / (4 + seed as u32 % 5)) % 2 * 200 + x * 2) as u8;
        Rgb([v, v.wrapping_add(seed), 255 - v])
    }))
}

#[derive(Default, Clone)]
pub struct MemoryGallery(Arc<Mutex<Inner>>);

impl MemoryGallery {
    fn add_crop(inner: &mut Inner, identity: u64, modality: Modality, img: &DynamicImage) -> u64 {
        inner.next_id += 1;
        let id = inner.next_id;
        inner.crops.insert(id, (identity, modality, png(img)));
        id
    }

    /// Two identities: #1 seen in RGB by day and in thermal by night (a
    /// day/night link), #2 only in RGB. Crops are solid colours the dashboard
    /// test looks for: red for RGB, mid-grey for thermal.
    pub fn seeded() -> MemoryGallery {
        let g = MemoryGallery::default();
        {
            let mut inner = g.0.lock().unwrap();
            inner.next_id = 100;
            inner.identities.insert(1, (Some("alice".into()), 1_763_700_000.0, 1_763_740_000.0));
            inner.identities.insert(2, (None, 1_763_700_500.0, 1_763_700_600.0));
            let red = solid(24, 48, [220, 20, 20]);
            let grey = solid(24, 48, [128, 128, 128]);
            let blue = solid(24, 48, [20, 20, 220]);
            let c1 = Self::add_crop(&mut inner, 1, Modality::Rgb, &red);
            let c2 = Self::add_crop(&mut inner, 1, Modality::Thermal, &grey);
            let c3 = Self::add_crop(&mut inner, 2, Modality::Rgb, &blue);
            let s = |id, identity, camera: &str, modality, start, score, link, crop| SightingBody {
                id,
                identity_id: identity,
                camera: camera.into(),
                modality,
                start_time: start,
                end_time: Some(start + 30.0),
                score,
                new_identity: score.is_none(),
                paired_sighting_id: None,
                partner_sighting_ids: vec![],
                day_night_link: link,
                crops: vec![crop],
            };
            inner.sightings.push(s(11, 1, "gate-rgb", Modality::Rgb, 1_763_700_000.0, None, false, c1));
            inner.sightings.push(s(12, 2, "gate-rgb", Modality::Rgb, 1_763_700_500.0, None, false, c3));
            inner.sightings.push(s(13, 1, "gate-thermal", Modality::Thermal, 1_763_740_000.0, Some(0.57), true, c2));
            inner.exemplars.push(Exemplar { identity: 1, modality: Modality::Rgb, feature: feature(&red) });
            inner.exemplars.push(Exemplar { identity: 2, modality: Modality::Rgb, feature: feature(&blue) });
        }
        g
    }
}

impl GalleryApi for MemoryGallery {
    fn identities(&self, offset: usize, limit: usize) -> GalleryApiResult<Vec<IdentityBody>> {
        let inner = self.0.lock().unwrap();
        let mut out: Vec<IdentityBody> = inner.identities.keys().map(|id| summary(&inner, *id)).collect();
        out.sort_by(|a, b| b.last_seen.unwrap_or(f64::MIN).total_cmp(&a.last_seen.unwrap_or(f64::MIN)));
        Ok(out.into_iter().skip(offset).take(limit).collect())
    }

    fn identity(&self, id: u64) -> GalleryApiResult<Option<IdentityDetail>> {
        let inner = self.0.lock().unwrap();
        if !inner.identities.contains_key(&id) {
            return Ok(None);
        }
        let crops_of = |m| inner.crops.iter().filter(|(_, (i, cm, _))| *i == id && *cm == m).map(|(c, _)| *c).collect();
        Ok(Some(IdentityDetail {
            summary: summary(&inner, id),
            sightings: inner.sightings.iter().filter(|s| s.identity_id == id).cloned().collect(),
            crops_rgb: crops_of(Modality::Rgb),
            crops_thermal: crops_of(Modality::Thermal),
        }))
    }

    fn sightings(&self, f: &SightingFilter) -> GalleryApiResult<Vec<SightingBody>> {
        let inner = self.0.lock().unwrap();
        let mut out: Vec<SightingBody> = inner
            .sightings
            .iter()
            .filter(|s| f.since.is_none_or(|t| s.end_time.is_none_or(|e| e >= t)))
            .filter(|s| f.camera.as_ref().is_none_or(|c| &s.camera == c))
            .filter(|s| f.modality.is_none_or(|m| s.modality == m))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.start_time.total_cmp(&a.start_time));
        out.truncate(f.limit);
        Ok(out)
    }

    fn enrol(&self, image: UploadedImage, label: Option<String>) -> GalleryApiResult<Enrolled> {
        let mut inner = self.0.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.identities.insert(id, (label, 1_763_800_000.0, 1_763_800_000.0));
        let crop = Self::add_crop(&mut inner, id, image.modality, &image.image);
        inner.exemplars.push(Exemplar { identity: id, modality: image.modality, feature: feature(&image.image) });
        Ok(Enrolled { identity_id: id, crop_id: Some(crop) })
    }

    fn query(&self, image: UploadedImage, k: usize) -> GalleryApiResult<Vec<QueryMatch>> {
        let inner = self.0.lock().unwrap();
        let q = feature(&image.image);
        let mut best: BTreeMap<u64, (f32, bool)> = BTreeMap::new();
        for e in &inner.exemplars {
            let s: f32 = q.iter().zip(&e.feature).map(|(a, b)| a * b).sum();
            let entry = best.entry(e.identity).or_insert((f32::MIN, false));
            if s > entry.0 {
                *entry = (s, e.modality != image.modality);
            }
        }
        let mut out: Vec<QueryMatch> = best
            .into_iter()
            .map(|(id, (score, cross))| QueryMatch {
                identity_id: id,
                label: inner.identities.get(&id).and_then(|i| i.0.clone()),
                score,
                cross_modality: cross,
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(k);
        Ok(out)
    }

    fn forget(&self, id: u64) -> GalleryApiResult<bool> {
        let mut inner = self.0.lock().unwrap();
        let existed = inner.identities.remove(&id).is_some();
        inner.sightings.retain(|s| s.identity_id != id);
        inner.crops.retain(|_, (i, _, _)| *i != id);
        inner.exemplars.retain(|e| e.identity != id);
        Ok(existed)
    }

    fn crop(&self, crop_id: u64) -> GalleryApiResult<Option<CropImage>> {
        let inner = self.0.lock().unwrap();
        Ok(inner.crops.get(&crop_id).map(|(_, _, bytes)| CropImage { content_type: "image/png", bytes: bytes.clone() }))
    }

    fn stats(&self) -> GalleryApiResult<GalleryStats> {
        let inner = self.0.lock().unwrap();
        Ok(GalleryStats {
            identities: inner.identities.len() as u64,
            sightings: inner.sightings.len() as u64,
            exemplars: inner.exemplars.len() as u64,
        })
    }
}

fn summary(inner: &Inner, id: u64) -> IdentityBody {
    let (label, first, last) = inner.identities[&id].clone();
    let count = |m| inner.sightings.iter().filter(|s| s.identity_id == id && s.modality == m).count() as u64;
    let thumb = |m| inner.crops.iter().find(|(_, (i, cm, _))| *i == id && *cm == m).map(|(c, _)| *c);
    IdentityBody {
        id,
        label,
        first_seen: first,
        last_seen: Some(last),
        sightings_rgb: count(Modality::Rgb),
        sightings_thermal: count(Modality::Thermal),
        day_night_linked: inner.sightings.iter().any(|s| s.identity_id == id && s.day_night_link),
        thumbnail_rgb: thumb(Modality::Rgb),
        thumbnail_thermal: thumb(Modality::Thermal),
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub metrics: Arc<PipelineMetrics>,
    _runtime: tokio::runtime::Runtime,
}

pub const MAX_UPLOAD: usize = 64 * 1024;

/// Serves the real router on a free loopback port, on its own runtime.
pub fn start(gallery: MemoryGallery) -> Server {
    start_with(Arc::new(gallery))
}

pub fn start_with(gallery: Arc<dyn GalleryApi>) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let metrics = Arc::new(PipelineMetrics::new());
    metrics.register_camera("gate-rgb", Modality::Rgb);
    metrics.register_camera("gate-thermal", Modality::Thermal);
    for _ in 0..5 {
        metrics.frame_in("gate-rgb");
    }
    metrics.frames_dropped("gate-rgb", 2);
    metrics.camera_state("gate-thermal", CameraState::Retrying);
    let state = ApiState::new(gallery, metrics.clone(), TOKEN.to_string(), 1024);
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, router(state, MAX_UPLOAD)).await.unwrap() });
    Server { addr, metrics, _runtime: runtime }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts a JSON error with this status and code; returns the message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert!(
            self.header("content-type").unwrap_or("").starts_with("application/json"),
            "error must be JSON: {:?}",
            self.headers
        );
        let j = self.json();
        assert_eq!(j["error"]["code"], code, "{j}");
        let msg = j["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "error without a message: {j}");
        msg
    }
}

/// One HTTP/1.1 request over a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading everything; a reset then is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no HTTP header end in response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Response { status, headers, body }
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, Some(TOKEN), None, b"")
}

/// A multipart/form-data body from (name, filename, bytes) parts.
/// One multipart form field: name, file name (for files), content.
pub type FormPart<'a> = (&'a str, Option<&'a str>, &'a [u8]);

pub fn multipart(parts: &[FormPart]) -> (String, Vec<u8>) {
    let boundary = "vireid-test-boundary-7d2f";
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn post_form(addr: SocketAddr, path: &str, parts: &[FormPart]) -> Response {
    let (ct, body) = multipart(parts);
    request(addr, "POST", path, Some(TOKEN), Some(&ct), &body)
}

/// The tiny fixture embedding model of tests/embed_models.py (features = pooled,
/// normalised colour), written into `dir` by the project's Python.
pub fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let python = std::env::var_os("VIREID_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(".venv/bin/python"));
    assert!(
        python.exists(),
        "VIREID_PYTHON ({}) does not exist: run `make setup` or export VIREID_PYTHON",
        python.display()
    );
    let status = std::process::Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed_models.py"))
        .arg(dir)
        .status()
        .expect("run tests/embed_models.py");
    assert!(status.success(), "tests/embed_models.py failed");
    dir.join("tiny.onnx")
}
