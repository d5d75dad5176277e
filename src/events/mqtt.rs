//! MQTT sink: sighting events and availability, in the conventions home
//! automation and VMS integrations already understand (Frigate's):
//!
//! * `<prefix>/events` — one JSON message per change of a sighting:
//!   `{"type": "new"|"update"|"end", "before": {…}, "after": {…}}`. `new` when
//!   a person's track is confirmed, `update` while they are followed (at most
//!   one per `update_interval_s`), `end` once they have left and the gallery
//!   has decided who it was (`identity_id`, `sighting_id`); see
//!   [`super::lifecycle`]. `before` is the sighting as last published (for
//!   `new`, the same as `after`). QoS 1, not retained, in the order they
//!   were published.
//! * `<prefix>/available` — `online` (retained) once connected; the broker
//!   publishes the last will `offline` (retained) if vireid dies, and vireid
//!   publishes `offline` itself, once, on a clean shutdown.
//!
//! Topics are configurable (`[mqtt]` in the config). The publisher never blocks
//! the pipeline: events go into a bounded queue, and when the broker is slow or
//! unreachable the newest events are dropped and counted instead of piling up.

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::lifecycle::{event_id, Lifecycle};
use crate::core::time::{now_ns, ns_to_secs, unix_ns};
use crate::core::{ConfigError, Modality, Shutdown, Sighting, SightingSink, SinkError};
use crate::ingest::CameraConfig;
use crate::track::{ActiveTrack, FinishedTrack, TrackObserver};

/// What can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("MQTT queue full or closed, event dropped ({0}): is the broker reachable?")]
    Dropped(rumqttc::ClientError),
    #[error("serialising a sighting event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("queueing MQTT offline/disconnect: {0}")]
    Disconnect(rumqttc::ClientError),
    #[error("MQTT disconnect did not finish within {0:?}; queued events may be lost")]
    Timeout(Duration),
    #[error("the MQTT task panicked")]
    Panicked,
    #[error("MQTT sink still in use at shutdown: the gallery has not finished")]
    StillInUse,
}

/// The `[mqtt]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Off unless the user turns it on.
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Client id; must be unique per broker (two boxes with one id kick each other off).
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Topics are `<topic_prefix>/events` and `<topic_prefix>/available` unless set below.
    pub topic_prefix: String,
    pub events_topic: Option<String>,
    pub availability_topic: Option<String>,
    pub keep_alive_s: u64,
    /// Events held while the broker is slow or away; newer ones are dropped past this.
    pub queue_events: usize,
    /// Sightings published and not yet ended; past this the oldest is ended early.
    pub max_open_sightings: usize,
    /// Least time between two `update`s of one sighting, seconds.
    pub update_interval_s: f64,
    /// How long an ended track waits for the gallery's decision before its
    /// `end` goes out without an identity (it failed embedding, say), seconds.
    pub end_wait_s: f64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "vireid".into(),
            username: None,
            password: None,
            topic_prefix: "vireid".into(),
            events_topic: None,
            availability_topic: None,
            keep_alive_s: 30,
            queue_events: 256,
            max_open_sightings: 4096,
            update_interval_s: 1.0,
            end_wait_s: 30.0,
        }
    }
}

impl MqttConfig {
    pub fn events_topic(&self) -> String {
        self.events_topic.clone().unwrap_or_else(|| format!("{}/events", self.topic_prefix))
    }

    pub fn availability_topic(&self) -> String {
        self.availability_topic.clone().unwrap_or_else(|| format!("{}/available", self.topic_prefix))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.host.trim().is_empty() {
            crate::invalid_config!("mqtt.host", "mqtt.host is empty: set the broker's host name or address");
        }
        if self.port == 0 {
            crate::invalid_config!("mqtt.port", "mqtt.port is 0: set the broker's port (1883 by default)");
        }
        if self.client_id.is_empty() || self.client_id.len() > 256 {
            crate::invalid_config!("mqtt.client_id", "mqtt.client_id must be 1..=256 characters");
        }
        if self.username.is_none() && self.password.is_some() {
            crate::invalid_config!("mqtt.password", "mqtt.password is set without mqtt.username: set both or neither");
        }
        for (key, topic) in
            [("mqtt.events_topic", self.events_topic()), ("mqtt.availability_topic", self.availability_topic())]
        {
            if topic.is_empty() || topic.contains(['#', '+', '\0']) {
                crate::invalid_config!(
                    key,
                    "{key} (or mqtt.topic_prefix) gives '{topic}': a topic to publish to must be non-empty and contain no '#', '+' or NUL"
                );
            }
        }
        if self.keep_alive_s < 5 {
            crate::invalid_config!(
                "mqtt.keep_alive_s",
                "mqtt.keep_alive_s is {}: use at least 5 seconds",
                self.keep_alive_s
            );
        }
        for (key, value, least) in
            [("mqtt.update_interval_s", self.update_interval_s, 0.1), ("mqtt.end_wait_s", self.end_wait_s, 1.0)]
        {
            if !(value.is_finite() && value >= least) {
                crate::invalid_config!(key, "{key} is {value}: use at least {least} seconds");
            }
        }
        if self.queue_events == 0 || self.max_open_sightings == 0 {
            crate::invalid_config!(
                "mqtt.queue_events",
                "mqtt.queue_events and mqtt.max_open_sightings must be at least 1"
            );
        }
        Ok(())
    }
}

/// What changed about a sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SightingEventKind {
    New,
    Update,
    End,
}

/// The MQTT wire form of a sighting: one track of one person on one camera,
/// and the identity it was linked to, in the NVR conventions. While the track
/// is live ([`super::lifecycle`]) the identity fields are empty; on `end` they
/// are the gallery's decision (`From<&Sighting>`), so the wire format stays
/// fixed when the gallery's internals change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttSighting {
    /// Event id, the same on `new`, `update` and `end`: the track's start in
    /// Unix seconds, its camera and track number (`1764000000.250000-gate-thermal-3`).
    pub id: String,
    /// The stored sighting (`/api/v1/sightings/{id}`), set on `end`.
    pub sighting_id: Option<u64>,
    pub camera: String,
    #[serde(rename = "box")]
    pub box_name: String,
    pub modality: Modality,
    /// Always `person`; kept so consumers written for camera NVRs can filter on it.
    pub label: String,
    /// The identity matched (or created, if none matched: open set), set on `end`.
    pub identity_id: Option<u64>,
    /// The identity's user-given name, if enrolled with one.
    pub identity_label: Option<String>,
    /// Cosine similarity of the match; `None` for a new identity and before `end`.
    pub score: Option<f32>,
    /// The match crossed modalities (thermal ↔ RGB): a day/night link.
    pub day_night_link: bool,
    /// Unix seconds.
    pub start_time: f64,
    /// Unix seconds; set on `end`.
    pub end_time: Option<f64>,
    /// Bounding box on the camera frame, `[x, y, w, h]` in pixels: the latest
    /// while live, the best crop's on `end`.
    #[serde(rename = "box_xywh")]
    pub bbox: [f32; 4],
    /// Frames the track has been matched in so far (`None` for a sighting
    /// never seen live).
    pub frames: Option<u32>,
}

impl From<&Sighting> for MqttSighting {
    fn from(s: &Sighting) -> MqttSighting {
        MqttSighting {
            id: event_id(s.start_ns, &s.camera, s.track_id),
            sighting_id: Some(s.id.max(0) as u64),
            camera: s.camera.clone(),
            box_name: String::new(),
            modality: s.modality,
            label: "person".into(),
            identity_id: Some(s.identity_id.max(0) as u64),
            identity_label: s.label.clone(),
            score: s.similarity,
            day_night_link: s.day_night_link,
            start_time: ns_to_secs(s.start_ns),
            end_time: Some(ns_to_secs(s.end_ns)),
            bbox: [s.best_box.x, s.best_box.y, s.best_box.w, s.best_box.h],
            frames: None,
        }
    }
}

/// The JSON message on `<prefix>/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(rename = "type")]
    pub kind: SightingEventKind,
    pub before: MqttSighting,
    pub after: MqttSighting,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct MqttStats {
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub connected: AtomicBool,
    pub connects: AtomicU64,
}

/// What the trackers, the gallery and the expiry tick share: the lifecycle
/// and the queue into the connection. Messages are queued under the
/// lifecycle's lock, so they leave in the order it made them.
struct Outbox {
    client: AsyncClient,
    lifecycle: Mutex<Lifecycle>,
    events_topic: String,
    stats: Arc<MqttStats>,
}

impl Outbox {
    /// Runs `change` on the lifecycle and queues what it produced. Never
    /// blocks: when the queue is full (broker slow or away) a message is
    /// dropped and counted; the `end` of a sighting still carries its full
    /// state, so a consumer recovers at the next message.
    fn apply(&self, change: impl FnOnce(&mut Lifecycle) -> Vec<EventMessage>) -> Result<(), MqttError> {
        let mut lifecycle = self.lifecycle.lock().unwrap_or_else(|p| p.into_inner());
        let mut first_err = None;
        for message in change(&mut lifecycle) {
            let payload = serde_json::to_vec(&message)?;
            match self.client.try_publish(self.events_topic.clone(), QoS::AtLeastOnce, false, payload) {
                Ok(()) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    first_err = first_err.or(Some(MqttError::Dropped(e)));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The MQTT connection: a tokio task that drives rumqttc's event loop
/// (connecting and reconnecting with back-off), one that ends sightings the
/// gallery never stored, and non-blocking entry points for the trackers
/// ([`TrackObserver`]) and the gallery ([`MqttSink`]).
pub struct MqttPublisher {
    outbox: Arc<Outbox>,
    availability_topic: String,
    stopping: Shutdown,
    task: tokio::task::JoinHandle<()>,
    expiry: tokio::task::JoinHandle<()>,
}

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

impl MqttPublisher {
    /// Starts the connection on the given runtime. Returns at once; the
    /// connection comes up in the background and `online` is published then.
    /// `cameras` name the box each camera belongs to.
    pub fn start(
        config: &MqttConfig,
        cameras: &[CameraConfig],
        runtime: &tokio::runtime::Handle,
    ) -> Result<MqttPublisher, MqttError> {
        config.validate()?;
        let availability_topic = config.availability_topic();
        let mut options = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
        options.set_keep_alive(Duration::from_secs(config.keep_alive_s));
        options.set_last_will(LastWill::new(availability_topic.clone(), OFFLINE, QoS::AtLeastOnce, true));
        if let (Some(user), Some(pass)) = (&config.username, &config.password) {
            options.set_credentials(user.clone(), pass.clone());
        } else if let Some(user) = &config.username {
            options.set_credentials(user.clone(), "");
        }
        let (client, eventloop) = AsyncClient::new(options, config.queue_events);
        let stats = Arc::new(MqttStats::default());
        let stopping = Shutdown::new();
        let boxes = cameras.iter().map(|c| (c.name.clone(), c.box_name.clone())).collect();
        let outbox = Arc::new(Outbox {
            client: client.clone(),
            lifecycle: Mutex::new(Lifecycle::new(
                boxes,
                config.update_interval_s,
                config.end_wait_s,
                config.max_open_sightings,
            )),
            events_topic: config.events_topic(),
            stats: stats.clone(),
        });
        let task = runtime.spawn(drive(
            eventloop,
            client,
            availability_topic.clone(),
            format!("{}:{}", config.host, config.port),
            stats,
            stopping.clone(),
        ));
        let expiry = runtime.spawn(expire_ends(outbox.clone()));
        Ok(MqttPublisher { outbox, availability_topic, stopping, task, expiry })
    }

    /// The gallery stored a sighting: its `end` (or `new` and `end`, if it
    /// was never seen live).
    pub fn stored(&self, sighting: &Sighting) -> Result<(), MqttError> {
        self.outbox.apply(|l| l.stored(sighting))
    }

    pub fn stats(&self) -> &Arc<MqttStats> {
        &self.outbox.stats
    }

    /// Clean shutdown: `end` every sighting still open, publish `offline`
    /// (so no last will is needed), send DISCONNECT after the queued events,
    /// and wait up to `timeout` for the broker to have it.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), MqttError> {
        self.expiry.abort();
        let drained = self.outbox.apply(Lifecycle::drain);
        self.stopping.request();
        let client = self.outbox.client.clone();
        let sent = async {
            client.publish(self.availability_topic.clone(), QoS::AtLeastOnce, true, OFFLINE).await?;
            client.disconnect().await?;
            Ok::<_, rumqttc::ClientError>(())
        };
        let mut task = self.task;
        let result = tokio::time::timeout(timeout, async {
            sent.await.map_err(MqttError::Disconnect)?;
            (&mut task).await.map_err(|_| MqttError::Panicked)
        })
        .await;
        match result {
            Ok(r) => r.and(drained),
            Err(_) => {
                task.abort();
                Err(MqttError::Timeout(timeout))
            }
        }
    }
}

impl TrackObserver for MqttPublisher {
    fn seen(&self, camera: &Arc<str>, modality: Modality, at: SystemTime, active: &[ActiveTrack]) {
        if let Err(e) = self.outbox.apply(|l| l.seen(camera, modality, unix_ns(at), active)) {
            tracing::debug!("MQTT: {e}");
        }
    }

    fn ended(&self, tracks: &[FinishedTrack]) {
        let at = tracks.iter().map(|t| unix_ns(t.end_time)).max().unwrap_or_else(now_ns);
        let _ = self.outbox.apply(|l| {
            l.ended(tracks, at);
            vec![]
        });
    }
}

/// The gallery's sightings on MQTT: each stored sighting ends its event.
pub struct MqttSink {
    publisher: Arc<MqttPublisher>,
}

impl MqttSink {
    pub fn new(publisher: Arc<MqttPublisher>) -> MqttSink {
        MqttSink { publisher }
    }
}

impl SightingSink for MqttSink {
    fn emit(&mut self, sighting: &Sighting) -> Result<(), SinkError> {
        self.publisher.stored(sighting).map_err(|e| SinkError {
            sink: "MQTT".into(),
            sighting_id: sighting.id,
            source: Box::new(e),
        })
    }
}

/// MQTT for `vireid run`: the connection, on the process's runtime, handing
/// out the gallery's sink and the trackers' observer.
pub struct MqttService {
    runtime: tokio::runtime::Handle,
    publisher: Arc<MqttPublisher>,
}

impl MqttService {
    /// `None` when `[mqtt] enabled = false`.
    pub fn start(
        config: &MqttConfig,
        cameras: &[CameraConfig],
        runtime: &tokio::runtime::Handle,
    ) -> Result<Option<MqttService>, MqttError> {
        if !config.enabled {
            return Ok(None);
        }
        let publisher = Arc::new(MqttPublisher::start(config, cameras, runtime)?);
        Ok(Some(MqttService { runtime: runtime.clone(), publisher }))
    }

    pub fn sink(&self) -> Box<dyn SightingSink> {
        Box::new(MqttSink::new(self.publisher.clone()))
    }

    /// For the camera workers: `new` and `update` while people are tracked.
    pub fn observer(&self) -> Arc<dyn TrackObserver> {
        self.publisher.clone()
    }

    /// After the cameras have stopped and the gallery has drained: `end`
    /// what is still open, publish `offline`, disconnect.
    pub fn shutdown(self) -> Result<(), MqttError> {
        let MqttService { runtime, publisher } = self;
        let publisher = Arc::try_unwrap(publisher).map_err(|_| MqttError::StillInUse)?;
        runtime.block_on(publisher.shutdown(Duration::from_secs(5)))
    }
}

/// Once a second: `end` for tracks the gallery never stored.
async fn expire_ends(outbox: Arc<Outbox>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = outbox.apply(|l| l.expire(now_ns())) {
            tracing::debug!("MQTT: {e}");
        }
    }
}

async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    availability_topic: String,
    broker: String,
    stats: Arc<MqttStats>,
    stopping: Shutdown,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(500);
                stats.connected.store(true, Ordering::Relaxed);
                stats.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!("MQTT connected to {broker}");
                // try_: this task is the one draining the queue, so it must not wait on it.
                if let Err(e) = client.try_publish(availability_topic.clone(), QoS::AtLeastOnce, true, ONLINE) {
                    tracing::warn!("MQTT: cannot queue availability 'online': {e}");
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // The broker closes the connection once it has the
                // DISCONNECT; dropping the socket before that would make it
                // publish the last will: a second `offline`.
                let _ = tokio::time::timeout(Duration::from_secs(2), async { while eventloop.poll().await.is_ok() {} })
                    .await;
                stats.connected.store(false, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                if stopping.is_requested() {
                    return;
                }
                tracing::warn!("MQTT broker {broker}: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(frames: u32) -> MqttSighting {
        MqttSighting {
            id: event_id(1_700_000_000_500_000_000, "gate-thermal", 3),
            sighting_id: None,
            camera: "gate-thermal".into(),
            box_name: "gate".into(),
            modality: Modality::Thermal,
            label: "person".into(),
            identity_id: None,
            identity_label: None,
            score: None,
            day_night_link: false,
            start_time: 1_700_000_000.5,
            end_time: None,
            bbox: [10.0, 20.0, 40.0, 100.0],
            frames: Some(frames),
        }
    }

    #[test]
    fn validate_names_the_key() {
        let mut cfg = MqttConfig { enabled: true, ..Default::default() };
        cfg.validate().unwrap();
        cfg.topic_prefix = "a/#".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("mqtt.events_topic"), "{err}");
        let cfg = MqttConfig { enabled: true, password: Some("x".into()), ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("mqtt.username"));
    }

    #[test]
    fn wire_format() {
        let m = EventMessage { kind: SightingEventKind::New, before: state(1), after: state(1) };
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "new");
        assert_eq!(v["after"]["id"], "1700000000.500000-gate-thermal-3");
        assert_eq!(v["after"]["sighting_id"], serde_json::Value::Null);
        assert_eq!(v["after"]["modality"], "thermal");
        assert_eq!(v["after"]["box"], "gate");
        assert_eq!(v["after"]["label"], "person");
        assert_eq!(v["after"]["end_time"], serde_json::Value::Null);
    }
}
