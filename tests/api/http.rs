//! The HTTP API over a real loopback socket: every endpoint, auth failures,
//! oversize uploads, malformed bodies (JSON errors with a message, no panic).

use crate::support::*;

const PROTECTED: [(&str, &str); 8] = [
    ("GET", "/metrics"),
    ("GET", "/api/v1/identities"),
    ("GET", "/api/v1/identities/1"),
    ("DELETE", "/api/v1/identities/1"),
    ("GET", "/api/v1/sightings"),
    ("POST", "/api/v1/enrol"),
    ("POST", "/api/v1/query"),
    ("GET", "/api/v1/crops/101"),
];

#[test]
fn health_and_dashboard_need_no_token() {
    let srv = start(MemoryGallery::seeded());
    let r = request(srv.addr, "GET", "/healthz", None, None, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = request(srv.addr, "GET", "/", None, None, b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<title>vireid</title>"));
}

#[test]
fn every_protected_route_rejects_missing_wrong_and_malformed_tokens() {
    let srv = start(MemoryGallery::seeded());
    for (method, path) in PROTECTED {
        let r = request(srv.addr, method, path, None, None, b"");
        let msg = r.expect_error(401, "unauthorized");
        assert!(msg.contains("Bearer"), "{method} {path}: {msg}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        request(srv.addr, method, path, Some("wrong-token-0123456789abcdef"), None, b"")
            .expect_error(401, "unauthorized");
        // A prefix of the right token is still wrong.
        request(srv.addr, method, path, Some(&TOKEN[..TOKEN.len() - 1]), None, b"").expect_error(401, "unauthorized");
    }
    // Not `Bearer`: Basic auth is refused with a message naming the scheme.
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /api/v1/identities HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 401") && raw.contains("Bearer <token>"), "{raw}");
    // Nothing was deleted by the unauthenticated DELETEs.
    assert_eq!(get(srv.addr, "/api/v1/identities/1").status, 200);
}

#[test]
fn metrics_are_prometheus_text() {
    let srv = start(MemoryGallery::seeded());
    srv.metrics.detections.fetch_add(7, std::sync::atomic::Ordering::Relaxed);
    srv.metrics.dropped_detections.fetch_add(3, std::sync::atomic::Ordering::Relaxed);
    srv.metrics.day_night_links.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    srv.metrics.adapter_swaps.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    srv.metrics.stage_latency("detect", std::time::Duration::from_millis(12));
    let r = get(srv.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let t = r.text();
    for line in [
        "vireid_frames_total{camera=\"gate-rgb\",modality=\"rgb\"} 5",
        "vireid_frames_dropped_total{camera=\"gate-rgb\",modality=\"rgb\"} 2",
        "vireid_camera_up{camera=\"gate-thermal\",state=\"retrying\"} 0",
        "vireid_detections_total 7",
        "vireid_dropped_detections_total 3",
        "vireid_day_night_links_total 1",
        "vireid_adapter_swaps_total 2",
        "vireid_gallery_identities 2",
        "vireid_gallery_sightings 3",
        "vireid_stage_latency_seconds_bucket{stage=\"detect\",le=\"0.025\"} 1",
        "vireid_stage_latency_seconds_count{stage=\"detect\"} 1",
    ] {
        assert!(t.lines().any(|l| l == line), "missing `{line}` in:\n{t}");
    }
    // Every sample line belongs to a declared family.
    for l in t.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = l.split(['{', ' ']).next().unwrap();
        let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            t.contains(&format!("# TYPE {family} ")) || t.contains(&format!("# TYPE {name} ")),
            "undeclared {name}"
        );
    }
}

#[test]
fn identities_list_detail_and_crops() {
    let srv = start(MemoryGallery::seeded());
    let list = get(srv.addr, "/api/v1/identities").json();
    let ids: Vec<u64> = list.as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![1, 2], "most recently seen first");
    assert_eq!(list[0]["day_night_linked"], true);
    assert_eq!(list[0]["label"], "alice");
    let page = get(srv.addr, "/api/v1/identities?offset=1&limit=1").json();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], 2);

    let d = get(srv.addr, "/api/v1/identities/1").json();
    assert_eq!(d["id"], 1);
    assert_eq!(d["sightings"].as_array().unwrap().len(), 2);
    assert_eq!(d["crops_rgb"].as_array().unwrap().len(), 1);
    assert_eq!(d["crops_thermal"].as_array().unwrap().len(), 1);
    let crop_id = d["crops_thermal"][0].as_u64().unwrap();
    let crop = get(srv.addr, &format!("/api/v1/crops/{crop_id}"));
    assert_eq!(crop.status, 200);
    assert_eq!(crop.header("content-type"), Some("image/png"));
    let img = image::load_from_memory(&crop.body).unwrap().to_rgb8();
    assert_eq!(img.get_pixel(3, 3).0, [128, 128, 128], "the thermal crop of identity 1");

    get(srv.addr, "/api/v1/identities/999").expect_error(404, "not_found");
    get(srv.addr, "/api/v1/crops/999").expect_error(404, "not_found");
    get(srv.addr, "/api/v1/identities/abc").expect_error(400, "bad_request");
    get(srv.addr, "/api/v1/identities/-1").expect_error(400, "bad_request");
    get(srv.addr, "/api/v1/identities?limit=0").expect_error(400, "bad_request");
    get(srv.addr, "/api/v1/identities?limit=5000").expect_error(400, "bad_request");
    get(srv.addr, "/api/v1/identities?offset=x").expect_error(400, "bad_request");
}

#[test]
fn sightings_filter_by_since_camera_and_modality() {
    let srv = start(MemoryGallery::seeded());
    let ids = |path: &str| -> Vec<u64> {
        let r = get(srv.addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json().as_array().unwrap().iter().map(|s| s["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids("/api/v1/sightings"), vec![13, 12, 11], "newest first");
    assert_eq!(ids("/api/v1/sightings?camera=gate-thermal"), vec![13]);
    assert_eq!(ids("/api/v1/sightings?modality=rgb"), vec![12, 11]);
    assert_eq!(ids("/api/v1/sightings?modality=thermal&camera=gate-rgb"), Vec::<u64>::new());
    assert_eq!(ids("/api/v1/sightings?since=1763700100"), vec![13, 12]);
    assert_eq!(ids("/api/v1/sightings?limit=1"), vec![13]);
    let s = &get(srv.addr, "/api/v1/sightings?camera=gate-thermal").json()[0];
    assert_eq!(s["day_night_link"], true);
    assert_eq!(s["modality"], "thermal");

    // `ir` was an alias of thermal, accepted silently: one name per modality.
    for bad in ["depth", "ir", "RGB"] {
        let m = get(srv.addr, &format!("/api/v1/sightings?modality={bad}")).expect_error(400, "bad_request");
        assert!(m.contains(&format!("'{bad}'")) && m.contains("rgb, thermal"), "{m}");
    }
    let m = get(srv.addr, "/api/v1/sightings?since=yesterday").expect_error(400, "bad_request");
    assert!(m.contains("unix seconds"), "{m}");
}

#[test]
fn enrol_query_and_forget() {
    let srv = start(MemoryGallery::seeded());
    let person = png(&striped(3));
    let r = post_form(
        srv.addr,
        "/api/v1/enrol",
        &[("image", Some("p.png"), &person), ("modality", None, b"thermal"), ("label", None, b"bob")],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["identity_id"].as_u64().unwrap();
    let d = get(srv.addr, &format!("/api/v1/identities/{id}")).json();
    assert_eq!(d["label"], "bob");
    assert_eq!(d["crops_thermal"].as_array().unwrap().len(), 1);

    // The same person, as RGB: the enrolled thermal identity is the top match, across modalities.
    let r = post_form(
        srv.addr,
        "/api/v1/query",
        &[("image", Some("q.png"), &person), ("modality", None, b"rgb"), ("k", None, b"2")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json()["matches"].clone();
    assert_eq!(m.as_array().unwrap().len(), 2);
    assert_eq!(m[0]["identity_id"], id);
    assert_eq!(m[0]["cross_modality"], true);
    assert!(m[0]["score"].as_f64().unwrap() > 0.99);
    assert!(m[0]["score"].as_f64().unwrap() >= m[1]["score"].as_f64().unwrap());

    let r = request(srv.addr, "DELETE", &format!("/api/v1/identities/{id}"), Some(TOKEN), None, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["forgotten"], id);
    get(srv.addr, &format!("/api/v1/identities/{id}")).expect_error(404, "not_found");
    request(srv.addr, "DELETE", &format!("/api/v1/identities/{id}"), Some(TOKEN), None, b"")
        .expect_error(404, "not_found");
    let after =
        post_form(srv.addr, "/api/v1/query", &[("image", Some("q.png"), &person), ("modality", None, b"rgb")]).json();
    assert!(
        after["matches"].as_array().unwrap().iter().all(|m| m["identity_id"] != id),
        "forgotten identity still matches"
    );
}

#[test]
fn oversize_uploads_are_413_json() {
    let srv = start(MemoryGallery::seeded());
    // Bytes over api.max_upload_bytes (64 KiB in these tests).
    let big = vec![0u8; MAX_UPLOAD + 1024];
    let r = post_form(srv.addr, "/api/v1/enrol", &[("image", Some("big.png"), &big), ("modality", None, b"rgb")]);
    let msg = r.expect_error(413, "payload_too_large");
    assert!(msg.contains("max_upload_bytes"), "{msg}");
    // A small file that decodes to more pixels than api.max_image_side (1024 here).
    let wide = png(&solid(2000, 10, [0, 0, 0]));
    assert!(wide.len() < MAX_UPLOAD);
    let msg = post_form(srv.addr, "/api/v1/query", &[("image", Some("w.png"), &wide), ("modality", None, b"rgb")])
        .expect_error(413, "payload_too_large");
    assert!(msg.contains("max_image_side"), "{msg}");
    // The server is still up.
    assert_eq!(request(srv.addr, "GET", "/healthz", None, None, b"").status, 200);
}

#[test]
fn malformed_bodies_are_400_json() {
    let srv = start(MemoryGallery::seeded());
    let img = png(&striped(1));
    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        ("not multipart", Some("application/json"), br#"{"image":"x"}"#.to_vec(), "multipart"),
        ("no content type", None, b"hello".to_vec(), "multipart"),
        (
            "broken multipart",
            Some("multipart/form-data; boundary=zzz"),
            b"--zzz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc".to_vec(),
            "multipart",
        ),
    ];
    for (what, ct, body, needle) in cases {
        let r = request(srv.addr, "POST", "/api/v1/enrol", Some(TOKEN), ct, &body);
        let msg = r.expect_error(400, "bad_request");
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    let form_cases: Vec<(Vec<FormPart>, &str)> = vec![
        (vec![("modality", None, b"rgb")], "missing form field 'image'"),
        (vec![("image", Some("a.png"), &img)], "missing form field 'modality'"),
        (vec![("image", Some("a.png"), &img), ("modality", None, b"uv")], "unknown modality"),
        (vec![("image", Some("a.txt"), b"this is not an image"), ("modality", None, b"rgb")], "not a JPEG or PNG"),
        (vec![("image", Some("a.png"), &img[..img.len() / 2]), ("modality", None, b"rgb")], "cannot decode"),
        (
            vec![("image", Some("a.png"), &img), ("modality", None, b"rgb"), ("colour", None, b"red")],
            "unknown form field 'colour'",
        ),
    ];
    for (parts, needle) in &form_cases {
        let msg = post_form(srv.addr, "/api/v1/enrol", parts).expect_error(400, "bad_request");
        assert!(msg.contains(needle), "expected '{needle}' in '{msg}'");
    }
    for route in ["/api/v1/enrol", "/api/v1/query"] {
        let msg = post_form(srv.addr, route, &[("image", Some("a.png"), &img), ("modality", None, b"ir")])
            .expect_error(400, "bad_request");
        assert!(msg.contains("'ir'") && msg.contains("rgb, thermal"), "{route}: {msg}");
    }
    let tiny = png(&solid(4, 4, [1, 2, 3]));
    post_form(srv.addr, "/api/v1/enrol", &[("image", Some("t.png"), &tiny), ("modality", None, b"rgb")])
        .expect_error(400, "bad_request");
    let msg = post_form(
        srv.addr,
        "/api/v1/query",
        &[("image", Some("a.png"), &img), ("modality", None, b"rgb"), ("k", None, b"1000")],
    )
    .expect_error(400, "bad_request");
    assert!(msg.contains("k must be"), "{msg}");
    post_form(
        srv.addr,
        "/api/v1/query",
        &[("image", Some("a.png"), &img), ("modality", None, b"rgb"), ("k", None, b"many")],
    )
    .expect_error(400, "bad_request");
    post_form(
        srv.addr,
        "/api/v1/query",
        &[("image", Some("a.png"), &img), ("modality", None, b"rgb"), ("label", None, b"x")],
    )
    .expect_error(400, "bad_request");
    // Nothing was enrolled by any of the failures.
    assert_eq!(get(srv.addr, "/api/v1/identities").json().as_array().unwrap().len(), 2);
}

#[test]
fn unknown_routes_and_methods_are_json() {
    let srv = start(MemoryGallery::seeded());
    request(srv.addr, "GET", "/api/v2/nothing", Some(TOKEN), None, b"").expect_error(404, "not_found");
    request(srv.addr, "PUT", "/api/v1/identities/1", Some(TOKEN), None, b"").expect_error(405, "method_not_allowed");
    request(srv.addr, "POST", "/healthz", None, None, b"").expect_error(405, "method_not_allowed");
}

#[test]
fn cameras_report_state() {
    let srv = start(MemoryGallery::seeded());
    let c = get(srv.addr, "/api/v1/cameras").json();
    assert_eq!(c[0]["name"], "gate-rgb");
    assert_eq!(c[0]["state"], "running");
    assert_eq!(c[0]["frames_in"], 5);
    assert_eq!(c[1]["state"], "retrying");
}
