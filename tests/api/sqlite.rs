//! The HTTP API over the real gallery (SQLite + exemplar index) with the real
//! ONNX Runtime embedder running the tiny fixture model of tests/embed_models.py
//! (its features are the pooled, normalised colour, so colours are identities).

use crate::support::*;
use std::path::Path;
use std::sync::Arc;
use vireid::api::GalleryApiHandle;
use vireid::config::Config;
use vireid::embed::{open_embedder, EmbedConfig, EmbedderSpec, SharedEmbedder};
use vireid::pipeline::BackHalf;

/// The API over a running gallery actor, as `vireid serve` and `vireid run` have it.
/// The back half must outlive the server: it owns the actor.
fn sqlite_server(dir: &Path, model: &Path) -> (Server, BackHalf) {
    let spec = EmbedderSpec::Model(model.to_path_buf());
    let config = Config { state_dir: dir.to_path_buf(), ..Config::default() };
    // One embedder for the pipeline and the API, as `vireid serve` and `vireid run` have it.
    let embedder = SharedEmbedder::new(open_embedder(&spec, &EmbedConfig::default()).unwrap());
    let back = BackHalf::start(&config, embedder.clone(), &spec, Vec::new()).unwrap();
    let gallery = GalleryApiHandle::new(back.requests(), &config.gallery.db_path(dir), embedder).unwrap();
    (start_with(Arc::new(gallery)), back)
}

#[test]
fn enrol_query_list_and_forget_against_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let model = tiny_model(models.path());
    let (srv, _back) = sqlite_server(dir.path(), &model);
    assert_eq!(get(srv.addr, "/api/v1/identities").json(), serde_json::json!([]));

    let red = png(&solid(32, 64, [200, 30, 30]));
    let blue = png(&solid(32, 64, [30, 30, 200]));
    let r = post_form(
        srv.addr,
        "/api/v1/enrol",
        &[("image", Some("r.png"), &red), ("modality", None, b"rgb"), ("label", None, b"red coat")],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let red_id = r.json()["identity_id"].as_u64().unwrap();
    let r = post_form(
        srv.addr,
        "/api/v1/enrol",
        &[("image", Some("b.png"), &blue), ("modality", None, b"rgb"), ("label", None, b"blue coat")],
    );
    let blue_id = r.json()["identity_id"].as_u64().unwrap();
    // The real gallery requires a watch-list label for enrolment.
    post_form(srv.addr, "/api/v1/enrol", &[("image", Some("b.png"), &blue), ("modality", None, b"rgb")])
        .expect_error(400, "bad_request");

    let list = get(srv.addr, "/api/v1/identities").json();
    let labels: Vec<&str> = list.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 2);
    assert!(labels.contains(&"red coat") && labels.contains(&"blue coat"));
    let d = get(srv.addr, &format!("/api/v1/identities/{red_id}")).json();
    assert_eq!(d["label"], "red coat");
    assert_eq!(d["sightings"], serde_json::json!([]));
    // Enrolled, never seen: no "last seen" (the enrolment time was shown as one).
    assert_eq!(d["last_seen"], serde_json::Value::Null, "{d}");

    let r = post_form(
        srv.addr,
        "/api/v1/query",
        &[("image", Some("q.png"), &red), ("modality", None, b"rgb"), ("k", None, b"2")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json()["matches"].clone();
    assert_eq!(m[0]["identity_id"], red_id, "{m}");
    assert_eq!(m[0]["cross_modality"], false);
    assert!(m[0]["score"].as_f64().unwrap() > 0.99, "{m}");
    assert_eq!(m[1]["identity_id"], blue_id);
    assert!(m[1]["score"].as_f64().unwrap() < m[0]["score"].as_f64().unwrap());

    let metrics = get(srv.addr, "/metrics").text();
    assert!(metrics.lines().any(|l| l == "vireid_gallery_identities 2"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "vireid_gallery_exemplars 2"), "{metrics}");

    assert_eq!(
        request(srv.addr, "DELETE", &format!("/api/v1/identities/{red_id}"), Some(TOKEN), None, b"").status,
        200
    );
    get(srv.addr, &format!("/api/v1/identities/{red_id}")).expect_error(404, "not_found");
    let m = post_form(srv.addr, "/api/v1/query", &[("image", Some("q.png"), &red), ("modality", None, b"rgb")]).json();
    assert!(
        m["matches"].as_array().unwrap().iter().all(|x| x["identity_id"] != red_id),
        "forgotten identity still matches: {m}"
    );
    assert_eq!(get(srv.addr, "/api/v1/sightings?modality=thermal").json(), serde_json::json!([]));
    get(srv.addr, "/api/v1/crops/1").expect_error(404, "not_found");

    // Persisted: a new server on the same state dir sees what is left.
    drop(srv);
    let (srv, _back) = sqlite_server(dir.path(), &model);
    let list = get(srv.addr, "/api/v1/identities").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], blue_id);
}
