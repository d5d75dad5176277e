//! The MQTT sink against a real mosquitto broker started on a free loopback port.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};
use vireid::core::{BBox, Modality, Sighting};
use vireid::events::mqtt::{EventMessage, MqttConfig, MqttPublisher, SightingEventKind};
use vireid::track::{ActiveTrack, FinishedTrack, TrackObserver};

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mosquitto() -> Broker {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("mosquitto not found: `apt-get install -y mosquitto` (scripts/setup.sh installs it)");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
    let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "mosquitto did not listen on 127.0.0.1:{port} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { child, port, _dir: dir }
}

/// A subscriber that collects (topic, payload) until it has `n` messages on `topic_filter`.
/// A connection the broker drops before SUBACK (seen once on a loaded CI
/// machine: "Connection reset by peer") is made again, as any MQTT client
/// would: nothing is published to the subscriber before SUBACK, so nothing is lost.
async fn subscriber(port: u16, id: &str, filter: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut attempt = 1;
    'connect: loop {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(opts, 64);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        // Wait for SUBACK so nothing published afterwards is missed.
        loop {
            match tokio::time::timeout(Duration::from_secs(10), el.poll()).await.expect("no SUBACK within 10 s") {
                Ok(Event::Incoming(Packet::SubAck(_))) => return (client, el),
                Ok(_) => {}
                Err(e) if attempt < 3 => {
                    eprintln!("subscriber {id}: {e}; connecting again (attempt {})", attempt + 1);
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'connect;
                }
                Err(e) => panic!("subscriber: {e} (after {attempt} attempts)"),
            }
        }
    }
}

async fn next_publish(el: &mut rumqttc::EventLoop) -> (String, Vec<u8>, bool) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), el.poll()).await.expect("no message within 10 s") {
            Ok(Event::Incoming(Packet::Publish(p))) => return (p.topic, p.payload.to_vec(), p.retain),
            Ok(_) => {}
            Err(e) => panic!("subscriber: {e}"),
        }
    }
}

fn config(port: u16, prefix: &str) -> MqttConfig {
    MqttConfig {
        enabled: true,
        port,
        client_id: format!("vireid-test-{prefix}"),
        topic_prefix: prefix.into(),
        keep_alive_s: 5,
        ..Default::default()
    }
}

fn cameras() -> Vec<vireid::ingest::CameraConfig> {
    toml::from_str::<std::collections::HashMap<String, Vec<vireid::ingest::CameraConfig>>>(
        "camera = [{ name = \"gate-thermal\", modality = \"thermal\", box = \"gate\", source = \"test:\" }]",
    )
    .unwrap()
    .remove("camera")
    .unwrap()
}

const T0: u64 = 1_763_700_000_000_000_000;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0 + ms * 1_000_000)
}

fn live(track_id: u64, hits: u32) -> ActiveTrack {
    ActiveTrack { track_id, bbox: BBox::new(12.0, 30.0, 48.0, 120.0), score: 0.9, start_ns: T0 as i64, hits }
}

fn finished(track_id: u64, end_ms: u64, hits: u32) -> FinishedTrack {
    FinishedTrack {
        track_id,
        camera: std::sync::Arc::from("gate-thermal"),
        modality: Modality::Thermal,
        first_pts_ns: None,
        last_pts_ns: None,
        start_time: at(0),
        end_time: at(end_ms),
        hits,
        best_box: BBox::new(12.0, 30.0, 48.0, 120.0),
        best_score: 1.0,
        crops: vec![],
        path: vec![],
        light: None,
    }
}

fn stored(id: i64, track_id: u64, end_ms: u64) -> Sighting {
    Sighting {
        id,
        identity_id: 4,
        label: Some("alice".into()),
        new_identity: false,
        camera: "gate-thermal".into(),
        modality: Modality::Thermal,
        track_id,
        start_ns: T0 as i64,
        end_ns: (T0 + end_ms * 1_000_000) as i64,
        start_pts_ns: None,
        end_pts_ns: None,
        best_pts_ns: None,
        best_box: BBox::new(1.0, 2.0, 30.0, 90.0),
        similarity: Some(0.61),
        matched_modality: Some(Modality::Rgb),
        day_night_link: true,
        crop_path: None,
        paired_sighting_id: None,
    }
}

/// Checks one event stream: per id, `new`, then `update`s, then `end`; each
/// `before` the previous `after`; the documented fields present.
fn check_lifecycles(messages: &[serde_json::Value]) -> BTreeMap<String, Vec<EventMessage>> {
    let mut by_id: BTreeMap<String, Vec<EventMessage>> = BTreeMap::new();
    for (i, json) in messages.iter().enumerate() {
        for key in ["type", "before", "after"] {
            assert!(json.get(key).is_some(), "message {i} lacks '{key}': {json}");
        }
        for key in [
            "id",
            "sighting_id",
            "camera",
            "box",
            "modality",
            "label",
            "identity_id",
            "score",
            "day_night_link",
            "start_time",
            "end_time",
            "box_xywh",
            "frames",
        ] {
            assert!(json["after"].get(key).is_some(), "message {i} 'after' lacks '{key}': {json}");
        }
        let msg: EventMessage = serde_json::from_value(json.clone()).unwrap();
        by_id.entry(msg.after.id.clone()).or_default().push(msg);
    }
    for (id, msgs) in &by_id {
        let kinds: Vec<_> = msgs.iter().map(|m| m.kind).collect();
        assert_eq!(kinds.first(), Some(&SightingEventKind::New), "{id}: {kinds:?}");
        assert_eq!(kinds.last(), Some(&SightingEventKind::End), "{id}: {kinds:?}");
        assert!(kinds[1..kinds.len() - 1].iter().all(|k| *k == SightingEventKind::Update), "{id}: {kinds:?}");
        assert_eq!(msgs[0].before, msgs[0].after, "{id}: a new sighting's before is itself");
        for w in msgs.windows(2) {
            assert_eq!(w[1].before, w[0].after, "{id}: before must be the state last published");
        }
        let end = &msgs.last().unwrap().after;
        assert!(end.end_time.is_some(), "{id}: end without end_time");
        assert!(msgs[..msgs.len() - 1].iter().all(|m| m.after.end_time.is_none()), "{id}: end_time before the end");
    }
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_new_then_updated_then_ended_with_the_identity_and_offline_comes_once() {
    let broker = start_mosquitto();
    let (_sub, mut el) = subscriber(broker.port, "sub-events", "site1/vireid/#").await;

    let mut cfg = config(broker.port, "site1/vireid");
    cfg.availability_topic = Some("site1/vireid/status".into());
    let publisher =
        std::sync::Arc::new(MqttPublisher::start(&cfg, &cameras(), &tokio::runtime::Handle::current()).unwrap());

    // First: retained `online` on the configured availability topic.
    let (topic, payload, _) = next_publish(&mut el).await;
    assert_eq!((topic.as_str(), payload.as_slice()), ("site1/vireid/status", b"online".as_slice()));

    // Two people on the thermal camera, as its worker reports them (10 fps):
    // #1 for 3 s, #2 for 0.5 s; the gallery stores #2, then #1.
    let p = publisher.clone();
    tokio::task::spawn_blocking(move || {
        let camera: std::sync::Arc<str> = "gate-thermal".into();
        for i in 0..30u64 {
            let mut active = vec![live(1, 3 + i as u32)];
            if i < 5 {
                active.push(live(2, 3 + i as u32));
            }
            p.seen(&camera, Modality::Thermal, at(i * 100), &active);
            if i == 5 {
                p.ended(&[finished(2, 500, 7)]);
                p.stored(&stored(11, 2, 500)).unwrap();
            }
        }
        p.ended(&[finished(1, 3000, 32)]);
        p.stored(&stored(12, 1, 3000)).unwrap();
    })
    .await
    .unwrap();
    let mut messages = vec![];
    for _ in 0..6 {
        let (topic, payload, retain) = next_publish(&mut el).await;
        assert_eq!(topic, "site1/vireid/events");
        assert!(!retain, "events must not be retained");
        messages.push(serde_json::from_slice::<serde_json::Value>(&payload).unwrap());
    }
    let kinds: Vec<String> = messages.iter().map(|m| format!("{}#{}", m["type"], m["after"]["id"])).collect();
    let id = |t: u64| format!("\"{}\"", vireid::events::lifecycle::event_id(T0 as i64, "gate-thermal", t));
    let expected: Vec<String> = [("new", 1), ("new", 2), ("end", 2), ("update", 1), ("update", 1), ("end", 1)]
        .iter()
        .map(|(k, t)| format!("\"{k}\"#{}", id(*t)))
        .collect();
    assert_eq!(kinds, expected, "one `new`, an `update` a second while followed, `end` once stored");
    let by_id = check_lifecycles(&messages);
    let end = &by_id[&vireid::events::lifecycle::event_id(T0 as i64, "gate-thermal", 1)].last().unwrap().after;
    assert_eq!((end.sighting_id, end.identity_id, end.identity_label.as_deref()), (Some(12), Some(4), Some("alice")));
    assert_eq!((end.box_name.as_str(), end.frames), ("gate", Some(32)));
    assert_eq!(publisher.stats().published.load(std::sync::atomic::Ordering::Relaxed), 6);

    // Clean shutdown publishes `offline` itself, once: the broker must not
    // add its last will (it once did, when the socket closed too early).
    let publisher = std::sync::Arc::try_unwrap(publisher).ok().unwrap();
    publisher.shutdown(Duration::from_secs(5)).await.unwrap();
    let (topic, payload, _) = next_publish(&mut el).await;
    assert_eq!((topic.as_str(), payload.as_slice()), ("site1/vireid/status", b"offline".as_slice()));
    if let Ok((topic, payload, _)) = tokio::time::timeout(Duration::from_secs(2), next_publish(&mut el)).await {
        panic!("after `offline`: {topic} {}", String::from_utf8_lossy(&payload));
    }
}

#[test]
fn crash_leaves_retained_offline_via_last_will() {
    let broker = start_mosquitto();
    let port = broker.port;

    // vireid "crashes": its runtime is dropped, closing the socket without DISCONNECT.
    {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let publisher = MqttPublisher::start(&config(port, "lw"), &cameras(), rt.handle()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !publisher.stats().connected.load(std::sync::atomic::Ordering::Relaxed) {
            assert!(std::time::Instant::now() < deadline, "publisher did not connect");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200)); // let `online` reach the broker
        std::mem::forget(publisher); // no clean shutdown
        rt.shutdown_background();
    }

    // A later subscriber sees the retained availability: the broker's last will.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_c, mut el) = subscriber(port, "sub-lw", "lw/available").await;
            let (topic, payload, retain) = next_publish(&mut el).await;
            assert_eq!(topic, "lw/available");
            assert!(retain);
            if payload == b"offline" {
                break;
            }
            assert_eq!(payload, b"online");
            // The broker may not have noticed the dropped socket yet.
            assert!(std::time::Instant::now() < deadline, "last will 'offline' never published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_never_seen_live_goes_out_as_new_then_end() {
    use vireid::core::SightingSink;
    let broker = start_mosquitto();
    let (_sub, mut el) = subscriber(broker.port, "sub-sink", "sink/events").await;
    let publisher = std::sync::Arc::new(
        MqttPublisher::start(&config(broker.port, "sink"), &cameras(), &tokio::runtime::Handle::current()).unwrap(),
    );
    let mut sink = vireid::events::mqtt::MqttSink::new(publisher.clone());
    // The sink runs on the gallery's (non-async) thread.
    tokio::task::spawn_blocking(move || sink.emit(&stored(9, 3, 5000))).await.unwrap().unwrap();
    let mut kinds = vec![];
    for _ in 0..2 {
        let (_, payload, _) = next_publish(&mut el).await;
        let msg: EventMessage = serde_json::from_slice(&payload).unwrap();
        assert_eq!(msg.after.id, vireid::events::lifecycle::event_id(T0 as i64, "gate-thermal", 3));
        assert_eq!(msg.after.identity_id, Some(4));
        assert_eq!(msg.after.identity_label.as_deref(), Some("alice"));
        assert_eq!(msg.after.box_name, "gate");
        assert!(msg.after.day_night_link);
        assert_eq!(msg.after.start_time, 1_763_700_000.0);
        kinds.push((msg.kind, msg.after.end_time, msg.after.sighting_id));
    }
    assert_eq!(
        kinds,
        vec![(SightingEventKind::New, None, None), (SightingEventKind::End, Some(1_763_700_005.0), Some(9))]
    );
}

/// `vireid run` on a synthetic scene with `[mqtt]` on: each person tracked is
/// `new` → `update`… → `end` on the broker, every stored sighting ends exactly
/// one event (with its identity), and `offline` comes once, last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vireid_run_publishes_each_track_as_new_updates_end() {
    use vireid::synth::scene::{render_scene, SceneOptions};
    let broker = start_mosquitto();
    let dir = tempfile::tempdir().unwrap();
    // Rendered before subscribing: the subscriber is polled only while the test
    // waits for messages, and a render longer than its keep-alive (a loaded
    // machine) got it disconnected by the broker.
    let scene =
        render_scene(&SceneOptions { people: 3, ..SceneOptions::new(dir.path().join("scene"), 8.0, 5) }).unwrap();
    let (_sub, mut el) = subscriber(broker.port, "sub-run", "run/#").await;
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\n\
             [[camera]]\nname = \"gate-rgb\"\nmodality = \"rgb\"\nbox = \"gate\"\nsource = \"{}\"\n\
             [[camera]]\nname = \"gate-thermal\"\nmodality = \"thermal\"\nbox = \"gate\"\nsource = \"{}\"\n\
             [ingest]\nfile_pace = \"fast\"\n\
             [mqtt]\nenabled = true\nport = {}\ntopic_prefix = \"run\"\nupdate_interval_s = 0.2\n",
            dir.path().join("state").display(),
            scene.rgb_video.as_ref().unwrap().display(),
            scene.thermal_video.as_ref().unwrap().display(),
            broker.port
        ),
    )
    .unwrap();
    let sightings = dir.path().join("sightings.jsonl");
    let run = {
        let (cfg, sightings) = (cfg.clone(), sightings.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_vireid"))
                .args(["--log", "warn", "run", "--config"])
                .arg(&cfg)
                .args(["--tracks", "/dev/null", "--sightings"])
                .arg(&sightings)
                .output()
                .unwrap()
        })
    };
    let mut events = vec![];
    let mut availability = vec![];
    loop {
        let (topic, payload, _) = tokio::time::timeout(Duration::from_secs(240), next_publish(&mut el))
            .await
            .expect("vireid run published nothing for 240 s");
        if topic == "run/available" {
            availability.push(String::from_utf8_lossy(&payload).into_owned());
            if payload == b"offline" {
                break;
            }
        } else {
            assert_eq!(topic, "run/events");
            events.push(serde_json::from_slice::<serde_json::Value>(&payload).unwrap());
        }
    }
    let out = run.await.unwrap();
    assert!(out.status.success(), "vireid run failed: {}", String::from_utf8_lossy(&out.stderr));
    if let Ok((topic, payload, _)) = tokio::time::timeout(Duration::from_secs(2), next_publish(&mut el)).await {
        panic!("after `offline`: {topic} {}", String::from_utf8_lossy(&payload));
    }
    assert_eq!(availability, ["online", "offline"]);

    let by_id = check_lifecycles(&events);
    let stored = vireid::events::read_sightings(&sightings).unwrap();
    assert!(!stored.is_empty(), "no sighting stored");
    assert!(
        by_id.values().any(|m| m.iter().any(|m| m.kind == SightingEventKind::Update)),
        "no `update` while anyone was tracked: {by_id:#?}"
    );
    let updates = by_id.values().flatten().filter(|m| m.kind == SightingEventKind::Update).count();
    eprintln!(
        "{} events ({} people tracked, {updates} updates), {} sightings stored",
        events.len(),
        by_id.len(),
        stored.len()
    );
    for s in &stored {
        let ends: Vec<_> = by_id
            .values()
            .filter_map(|m| m.last())
            .filter(|m| m.after.sighting_id == Some(s.sighting_id as u64))
            .collect();
        assert_eq!(ends.len(), 1, "sighting {} should end exactly one event: {ends:#?}", s.sighting_id);
        let end = &ends[0].after;
        assert_eq!((end.identity_id, end.camera.as_str()), (Some(s.identity_id as u64), s.camera.as_str()));
        assert_eq!(end.box_name, "gate");
        let msgs = &by_id[&end.id];
        assert!(msgs.len() >= 2, "sighting {} was not announced live before its end: {msgs:#?}", s.sighting_id);
        assert!(msgs[..msgs.len() - 1].iter().all(|m| m.after.identity_id.is_none()));
    }
}
