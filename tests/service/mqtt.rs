//! The MQTT sink against a real mosquitto broker started on a free loopback port.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vireid::core::Modality;
use vireid::events::mqtt::{EventMessage, MqttConfig, MqttPublisher, MqttSighting, SightingChange, SightingEventKind};

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
async fn subscriber(port: u16, id: &str, filter: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    // Wait for SUBACK so nothing published afterwards is missed.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), el.poll()).await.expect("no SUBACK within 10 s") {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!("subscriber: {e}"),
        }
    }
    (client, el)
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

fn sighting(id: u64, frames: u32, end: bool) -> MqttSighting {
    MqttSighting {
        id,
        camera: "gate-thermal".into(),
        box_name: "gate".into(),
        modality: Modality::Thermal,
        label: "person".into(),
        identity_id: Some(42),
        identity_label: Some("alice".into()),
        score: Some(0.58),
        day_night_link: true,
        start_time: 1_763_700_000.25,
        end_time: end.then_some(1_763_700_004.0),
        bbox: [12.0, 30.0, 48.0, 120.0],
        frames: Some(frames),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_with_the_documented_json_and_availability() {
    let broker = start_mosquitto();
    let (_sub, mut el) = subscriber(broker.port, "sub-events", "site1/vireid/#").await;

    let mut cfg = config(broker.port, "site1/vireid");
    cfg.availability_topic = Some("site1/vireid/status".into());
    let publisher = MqttPublisher::start(&cfg, &tokio::runtime::Handle::current()).unwrap();

    // First: retained `online` on the configured availability topic.
    let (topic, payload, _) = next_publish(&mut el).await;
    assert_eq!((topic.as_str(), payload.as_slice()), ("site1/vireid/status", b"online".as_slice()));

    // Two interleaved sightings: new/update/update/end for #1, new/end for #2.
    let script = [
        (SightingEventKind::New, sighting(1, 1, false)),
        (SightingEventKind::New, sighting(2, 1, false)),
        (SightingEventKind::Update, sighting(1, 10, false)),
        (SightingEventKind::Update, sighting(1, 20, false)),
        (SightingEventKind::End, sighting(2, 3, true)),
        (SightingEventKind::End, sighting(1, 25, true)),
    ];
    for (kind, s) in script.iter().cloned() {
        publisher.publish(SightingChange { kind, sighting: s }).unwrap();
    }
    let expected_before_frames = [1, 1, 1, 10, 1, 20];
    for (i, (kind, after)) in script.iter().enumerate() {
        let (topic, payload, retain) = next_publish(&mut el).await;
        assert_eq!(topic, "site1/vireid/events");
        assert!(!retain, "events must not be retained");
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        // The documented field names, checked on the raw JSON.
        for key in ["type", "before", "after"] {
            assert!(json.get(key).is_some(), "message {i} lacks '{key}': {json}");
        }
        for key in [
            "id",
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
        let msg: EventMessage = serde_json::from_value(json).unwrap();
        assert_eq!(msg.kind, *kind, "message {i} out of order");
        assert_eq!(&msg.after, after, "message {i}");
        assert_eq!(msg.before.id, after.id);
        assert_eq!(
            msg.before.frames,
            Some(expected_before_frames[i]),
            "message {i}: 'before' is the previously published state"
        );
    }
    assert_eq!(publisher.stats().published.load(std::sync::atomic::Ordering::Relaxed), 6);

    // Clean shutdown publishes `offline` itself.
    publisher.shutdown(Duration::from_secs(5)).await.unwrap();
    let (topic, payload, _) = next_publish(&mut el).await;
    assert_eq!((topic.as_str(), payload.as_slice()), ("site1/vireid/status", b"offline".as_slice()));
}

#[test]
fn crash_leaves_retained_offline_via_last_will() {
    let broker = start_mosquitto();
    let port = broker.port;

    // vireid "crashes": its runtime is dropped, closing the socket without DISCONNECT.
    {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let publisher = MqttPublisher::start(&config(port, "lw"), rt.handle()).unwrap();
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
async fn gallery_events_go_out_as_new_then_end() {
    use vireid::core::SightingSink;
    let broker = start_mosquitto();
    let (_sub, mut el) = subscriber(broker.port, "sub-sink", "sink/events").await;
    let publisher = std::sync::Arc::new(
        MqttPublisher::start(&config(broker.port, "sink"), &tokio::runtime::Handle::current()).unwrap(),
    );
    let cameras: Vec<vireid::ingest::CameraConfig> =
        toml::from_str::<std::collections::HashMap<String, Vec<vireid::ingest::CameraConfig>>>(
            "camera = [{ name = \"gate-thermal\", modality = \"thermal\", box = \"gate\", source = \"test:\" }]",
        )
        .unwrap()
        .remove("camera")
        .unwrap();
    let mut sink = vireid::events::mqtt::MqttSink::new(publisher.clone(), &cameras);
    let event = vireid::core::Sighting {
        id: 9,
        identity_id: 4,
        label: Some("alice".into()),
        new_identity: false,
        camera: "gate-thermal".into(),
        modality: Modality::Thermal,
        track_id: 3,
        start_ns: 1_763_700_000_000_000_000,
        end_ns: 1_763_700_005_000_000_000,
        start_pts_ns: None,
        end_pts_ns: None,
        best_pts_ns: None,
        best_box: vireid::core::BBox::new(1.0, 2.0, 30.0, 90.0),
        similarity: Some(0.61),
        matched_modality: Some(Modality::Rgb),
        day_night_link: true,
        crop_path: None,
        paired_sighting_id: None,
    };
    // The sink runs on the gallery's (non-async) thread.
    tokio::task::spawn_blocking(move || sink.emit(&event)).await.unwrap().unwrap();
    let mut kinds = vec![];
    for _ in 0..2 {
        let (_, payload, _) = next_publish(&mut el).await;
        let msg: EventMessage = serde_json::from_slice(&payload).unwrap();
        assert_eq!(msg.after.id, 9);
        assert_eq!(msg.after.identity_id, Some(4));
        assert_eq!(msg.after.identity_label.as_deref(), Some("alice"));
        assert_eq!(msg.after.box_name, "gate");
        assert!(msg.after.day_night_link);
        assert_eq!(msg.after.start_time, 1_763_700_000.0);
        kinds.push((msg.kind, msg.after.end_time));
    }
    assert_eq!(kinds, vec![(SightingEventKind::New, None), (SightingEventKind::End, Some(1_763_700_005.0))]);
}
