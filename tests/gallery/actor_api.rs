//! The gallery behind the HTTP API (`api::GalleryApiHandle`): enrol,
//! query, list, detail, crops, forget — through the gallery actor, with the
//! colour-histogram embedder (no model needed).

use vireid::api::{GalleryApi, GalleryApiHandle, SightingFilter, UploadedImage};
use vireid::core::Modality;
use vireid::embed::{open_embedder, Baseline, EmbedConfig, Embedder, EmbedderSpec, SharedEmbedder};
use vireid::gallery::actor::run_gallery_actor;
use vireid::gallery::{Gallery, GalleryConfig};

fn person(colour: [u8; 3]) -> image::DynamicImage {
    // A figure on a grey backdrop: shirt colour above, dark trousers below.
    let img = image::RgbImage::from_fn(48, 96, |x, y| {
        if (12..36).contains(&x) && (10..50).contains(&y) {
            image::Rgb(colour)
        } else if (12..36).contains(&x) && (50..90).contains(&y) {
            image::Rgb([30, 30, 40])
        } else {
            image::Rgb([128, 128, 128])
        }
    });
    image::DynamicImage::ImageRgb8(img)
}

/// The gallery actor on its own thread, as the pipeline runs it (no pairing, no harvest).
fn spawn_actor(
    gallery: Gallery,
) -> (
    crossbeam_channel::Sender<vireid::embed::batcher::EmbeddedTrack>,
    crossbeam_channel::Sender<vireid::gallery::actor::GalleryRequest>,
    std::thread::JoinHandle<()>,
) {
    let (tracks_tx, tracks_rx) = crossbeam_channel::bounded(1);
    let (req_tx, req_rx) = crossbeam_channel::bounded(4);
    let actor = std::thread::spawn(move || {
        run_gallery_actor(
            gallery,
            tracks_rx,
            req_rx,
            vec![],
            vireid::pair::Pairer::disabled(),
            vireid::gallery::harvest::Harvester::disabled(),
            &Default::default(),
        )
    });
    (tracks_tx, req_tx, actor)
}

#[test]
fn enrol_query_list_crop_forget_through_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let spec = EmbedderSpec::Baseline(Baseline::Colorhist);
    let cfg = EmbedConfig::default();
    let embedder = SharedEmbedder::new(open_embedder(&spec, &cfg).unwrap());
    let gallery = Gallery::open(&GalleryConfig::default(), dir.path(), embedder.dim()).unwrap();
    let (tracks_tx, req_tx, actor) = spawn_actor(gallery);
    let api = GalleryApiHandle::new(req_tx, &dir.path().join("gallery.db"), embedder).unwrap();

    let red =
        api.enrol(UploadedImage { image: person([220, 30, 30]), modality: Modality::Rgb }, Some("red".into())).unwrap();
    let blue = api
        .enrol(UploadedImage { image: person([30, 30, 220]), modality: Modality::Rgb }, Some("blue".into()))
        .unwrap();
    assert_ne!(red.identity_id, blue.identity_id);

    let hits = api.query(UploadedImage { image: person([215, 35, 30]), modality: Modality::Rgb }, 2).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        (hits[0].identity_id, hits[0].label.as_deref(), hits[0].cross_modality),
        (red.identity_id, Some("red"), false)
    );
    assert!(hits[0].score > hits[1].score);

    let list = api.identities(0, 10).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(api.identities(1, 10).unwrap().len(), 1, "offset");
    let detail = api.identity(red.identity_id).unwrap().unwrap();
    assert_eq!(detail.summary.label.as_deref(), Some("red"));
    let red_crop = red.crop_id.expect("an enrolment keeps its image as a crop");
    assert_eq!(detail.crops_rgb, vec![red_crop]);
    let crop = api.crop(red_crop).unwrap().unwrap();
    assert_eq!(crop.content_type, "image/jpeg");
    let decoded = image::load_from_memory(&crop.bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (48, 96));
    assert!(api.crop(9_999).unwrap().is_none());
    assert!(api.sightings(&SightingFilter { limit: 10, ..Default::default() }).unwrap().is_empty());
    let stats = api.stats().unwrap();
    assert_eq!((stats.identities, stats.sightings, stats.exemplars), (2, 0, 2));

    assert!(api.forget(red.identity_id).unwrap());
    assert!(!api.forget(red.identity_id).unwrap(), "unknown id → false");
    assert!(api.identity(red.identity_id).unwrap().is_none());
    assert!(api.crop(red_crop).unwrap().is_none(), "crop file and row gone");
    let hits = api.query(UploadedImage { image: person([215, 35, 30]), modality: Modality::Rgb }, 2).unwrap();
    assert!(hits.iter().all(|h| h.identity_id != red.identity_id), "index forgot it too");

    // Closing both inputs ends the actor.
    drop(api);
    drop(tracks_tx);
    actor.join().unwrap();
}

/// A database another process holds locked is *busy* for the API (HTTP 503
/// with Retry-After: try again), not an internal error, and the client is not
/// sent the database's path or SQLite's message.
#[test]
fn a_locked_database_is_busy_not_internal() {
    use vireid::api::{ApiError, GalleryApiError};
    let dir = tempfile::tempdir().unwrap();
    let embedder = SharedEmbedder::new(
        open_embedder(&EmbedderSpec::Baseline(Baseline::Colorhist), &EmbedConfig::default()).unwrap(),
    );
    let config = GalleryConfig { busy_timeout_ms: 100, ..GalleryConfig::default() };
    let gallery = Gallery::open(&config, dir.path(), embedder.dim()).unwrap();
    let (tracks_tx, req_tx, actor) = spawn_actor(gallery);
    let api = GalleryApiHandle::new(req_tx, &dir.path().join("gallery.db"), embedder).unwrap();

    let holder = rusqlite::Connection::open(dir.path().join("gallery.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let err = api
        .enrol(UploadedImage { image: person([220, 30, 30]), modality: Modality::Rgb }, Some("red".into()))
        .unwrap_err();
    assert!(matches!(err, GalleryApiError::Busy(_)), "{err:?}");
    let http = ApiError::from(err);
    assert_eq!((http.status.as_u16(), http.code), (503, "busy"));
    assert!(!http.message.contains("gallery.db") && !http.message.contains("database is locked"), "{}", http.message);
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    // The lock gone, the same request succeeds.
    api.enrol(UploadedImage { image: person([220, 30, 30]), modality: Modality::Rgb }, Some("red".into())).unwrap();

    drop(api);
    drop(tracks_tx);
    actor.join().unwrap();
}
