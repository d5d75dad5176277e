//! MQTT sink: sighting events and availability, in the conventions home
//! automation and VMS integrations already understand (Frigate's):
//!
//! * `<prefix>/events` — one JSON message per change of a sighting:
//!   `{"type": "new"|"update"|"end", "before": {…}, "after": {…}}`.
//!   `before` is the sighting as last published (for `new`, the same as
//!   `after`), `after` is its state now; `end` carries the final state with
//!   `end_time` set. QoS 1, not retained, in the order they were published.
//! * `<prefix>/available` — `online` (retained) once connected; the broker
//!   publishes the last will `offline` (retained) if vireid dies, and vireid
//!   publishes `offline` itself on a clean shutdown.
//!
//! Topics are configurable (`[mqtt]` in the config). The publisher never blocks
//! the pipeline: events go into a bounded queue, and when the broker is slow or
//! unreachable the newest events are dropped and counted instead of piling up.

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::core::time::ns_to_secs;
use crate::core::{ConfigError, Modality, Shutdown, Sighting, SightingSink, SinkError};
use crate::ingest::CameraConfig;

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
    /// Sightings whose `before` state is remembered; the oldest is forgotten past this.
    pub max_open_sightings: usize,
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

/// The MQTT wire form of a [`Sighting`]: one track of one person on one
/// camera, and the identity it was linked to, in the NVR conventions.
///
/// Converted from the one sighting model (`From<&Sighting>`; the box comes
/// from the config, see [`MqttSink`]), so the wire format stays fixed when the
/// gallery's internals change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttSighting {
    /// Sighting id (unique per box database).
    pub id: u64,
    pub camera: String,
    #[serde(rename = "box")]
    pub box_name: String,
    pub modality: Modality,
    /// Always `person`; kept so consumers written for camera NVRs can filter on it.
    pub label: String,
    /// The identity matched (or created, if none matched: open set).
    pub identity_id: Option<u64>,
    /// The identity's user-given name, if enrolled with one.
    pub identity_label: Option<String>,
    /// Cosine similarity of the match, `None` for a new identity.
    pub score: Option<f32>,
    /// The match crossed modalities (thermal ↔ RGB): a day/night link.
    pub day_night_link: bool,
    /// Unix seconds.
    pub start_time: f64,
    /// Unix seconds; set on `end`.
    pub end_time: Option<f64>,
    /// Last bounding box on the camera frame: `[x, y, w, h]` in pixels.
    #[serde(rename = "box_xywh")]
    pub bbox: [f32; 4],
    /// Frames the track has covered so far, when the producer counts them.
    pub frames: Option<u32>,
}

impl From<&Sighting> for MqttSighting {
    fn from(s: &Sighting) -> MqttSighting {
        MqttSighting {
            id: s.id.max(0) as u64,
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

/// One change of a sighting, as published.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingChange {
    pub kind: SightingEventKind,
    pub sighting: MqttSighting,
}

/// The JSON message on `<prefix>/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(rename = "type")]
    pub kind: SightingEventKind,
    pub before: MqttSighting,
    pub after: MqttSighting,
}

/// Turns a stream of sighting changes into `before`/`after` messages,
/// remembering the last published state of each open sighting (bounded).
#[derive(Debug)]
pub struct EventComposer {
    open: HashMap<u64, (u64, MqttSighting)>,
    seq: u64,
    max_open: usize,
}

impl EventComposer {
    pub fn new(max_open: usize) -> EventComposer {
        EventComposer { open: HashMap::new(), seq: 0, max_open: max_open.max(1) }
    }

    pub fn compose(&mut self, event: SightingChange) -> EventMessage {
        self.seq += 1;
        let id = event.sighting.id;
        let before = match event.kind {
            SightingEventKind::End => self.open.remove(&id).map(|(_, s)| s),
            _ => self.open.get(&id).map(|(_, s)| s.clone()),
        }
        .unwrap_or_else(|| event.sighting.clone());
        if event.kind != SightingEventKind::End {
            if !self.open.contains_key(&id) && self.open.len() >= self.max_open {
                // A sighting whose end was never reported must not grow memory forever.
                if let Some(oldest) = self.open.iter().min_by_key(|(_, (seq, _))| *seq).map(|(k, _)| *k) {
                    self.open.remove(&oldest);
                }
            }
            self.open.insert(id, (self.seq, event.sighting.clone()));
        }
        EventMessage { kind: event.kind, before, after: event.sighting }
    }

    pub fn open_sightings(&self) -> usize {
        self.open.len()
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct MqttStats {
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub connected: AtomicBool,
    pub connects: AtomicU64,
}

/// The MQTT connection: a tokio task that drives rumqttc's event loop
/// (connecting and reconnecting with back-off) and a non-blocking `publish`.
pub struct MqttPublisher {
    client: AsyncClient,
    composer: Mutex<EventComposer>,
    events_topic: String,
    availability_topic: String,
    stats: Arc<MqttStats>,
    stopping: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

impl MqttPublisher {
    /// Starts the connection on the given runtime. Returns at once; the
    /// connection comes up in the background and `online` is published then.
    pub fn start(config: &MqttConfig, runtime: &tokio::runtime::Handle) -> Result<MqttPublisher, MqttError> {
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
        let task = runtime.spawn(drive(
            eventloop,
            client.clone(),
            availability_topic.clone(),
            format!("{}:{}", config.host, config.port),
            stats.clone(),
            stopping.clone(),
        ));
        Ok(MqttPublisher {
            client,
            composer: Mutex::new(EventComposer::new(config.max_open_sightings)),
            events_topic: config.events_topic(),
            availability_topic,
            stats,
            stopping,
            task,
        })
    }

    /// Queues one event. Never blocks: when the queue is full (broker slow or
    /// away) the event is dropped and counted; the `end` of a sighting still
    /// carries its full state, so a consumer recovers at the next message.
    pub fn publish(&self, event: SightingChange) -> Result<(), MqttError> {
        let message = self.composer.lock().unwrap_or_else(|p| p.into_inner()).compose(event);
        let payload = serde_json::to_vec(&message)?;
        match self.client.try_publish(self.events_topic.clone(), QoS::AtLeastOnce, false, payload) {
            Ok(()) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Err(MqttError::Dropped(e))
            }
        }
    }

    pub fn stats(&self) -> &Arc<MqttStats> {
        &self.stats
    }

    /// Clean shutdown: publish `offline` (so no last will is needed), send
    /// DISCONNECT after the queued events, and wait up to `timeout` for it.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), MqttError> {
        self.stopping.request();
        let sent = async {
            self.client.publish(self.availability_topic.clone(), QoS::AtLeastOnce, true, OFFLINE).await?;
            self.client.disconnect().await?;
            Ok::<_, rumqttc::ClientError>(())
        };
        let mut task = self.task;
        let result = tokio::time::timeout(timeout, async {
            sent.await.map_err(MqttError::Disconnect)?;
            (&mut task).await.map_err(|_| MqttError::Panicked)
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => {
                task.abort();
                Err(MqttError::Timeout(timeout))
            }
        }
    }
}

/// The gallery's sightings on MQTT. The gallery emits one sighting per
/// finished track, once it is stored; consumers written for NVR-style streams
/// act on `new` and close on `end`, so each is published as `new` (without
/// `end_time`) followed by `end` (the final state).
pub struct MqttSink {
    publisher: Arc<MqttPublisher>,
    /// camera name → box name, from the config.
    boxes: HashMap<String, String>,
}

impl MqttSink {
    pub fn new(publisher: Arc<MqttPublisher>, cameras: &[CameraConfig]) -> MqttSink {
        let boxes = cameras.iter().map(|c| (c.name.clone(), c.box_name.clone())).collect();
        MqttSink { publisher, boxes }
    }
}

impl SightingSink for MqttSink {
    fn emit(&mut self, sighting: &Sighting) -> Result<(), SinkError> {
        let box_name = self.boxes.get(&sighting.camera).cloned().unwrap_or_default();
        let end = MqttSighting { box_name, ..MqttSighting::from(sighting) };
        let new = MqttSighting { end_time: None, ..end.clone() };
        let sink_error =
            |e: MqttError| SinkError { sink: "MQTT".into(), sighting_id: sighting.id, source: Box::new(e) };
        self.publisher.publish(SightingChange { kind: SightingEventKind::New, sighting: new }).map_err(sink_error)?;
        self.publisher.publish(SightingChange { kind: SightingEventKind::End, sighting: end }).map_err(sink_error)
    }
}

/// MQTT for `vireid run`: the connection, on the process's runtime, handing
/// out sinks for the gallery.
pub struct MqttService {
    runtime: tokio::runtime::Handle,
    publisher: Arc<MqttPublisher>,
}

impl MqttService {
    /// `None` when `[mqtt] enabled = false`.
    pub fn start(config: &MqttConfig, runtime: &tokio::runtime::Handle) -> Result<Option<MqttService>, MqttError> {
        if !config.enabled {
            return Ok(None);
        }
        let publisher = Arc::new(MqttPublisher::start(config, runtime)?);
        Ok(Some(MqttService { runtime: runtime.clone(), publisher }))
    }

    pub fn sink(&self, cameras: &[CameraConfig]) -> Box<dyn SightingSink> {
        Box::new(MqttSink::new(self.publisher.clone(), cameras))
    }

    /// After the gallery has drained: publish `offline`, disconnect.
    pub fn shutdown(self) -> Result<(), MqttError> {
        let MqttService { runtime, publisher } = self;
        let publisher = Arc::try_unwrap(publisher).map_err(|_| MqttError::StillInUse)?;
        runtime.block_on(publisher.shutdown(Duration::from_secs(5)))
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

    fn state(id: u64, frames: u32) -> MqttSighting {
        MqttSighting {
            id,
            camera: "gate-thermal".into(),
            box_name: "gate".into(),
            modality: Modality::Thermal,
            label: "person".into(),
            identity_id: Some(7),
            identity_label: None,
            score: Some(0.61),
            day_night_link: true,
            start_time: 1_700_000_000.5,
            end_time: None,
            bbox: [10.0, 20.0, 40.0, 100.0],
            frames: Some(frames),
        }
    }

    #[test]
    fn before_is_the_last_published_state() {
        let mut c = EventComposer::new(16);
        let m = c.compose(SightingChange { kind: SightingEventKind::New, sighting: state(1, 1) });
        assert_eq!(m.before, m.after);
        let m = c.compose(SightingChange { kind: SightingEventKind::Update, sighting: state(1, 5) });
        assert_eq!((m.before.frames, m.after.frames), (Some(1), Some(5)));
        let mut end = state(1, 9);
        end.end_time = Some(1_700_000_010.0);
        let m = c.compose(SightingChange { kind: SightingEventKind::End, sighting: end });
        assert_eq!((m.before.frames, m.after.frames), (Some(5), Some(9)));
        assert_eq!(c.open_sightings(), 0);
    }

    #[test]
    fn open_sightings_are_bounded() {
        let mut c = EventComposer::new(3);
        for id in 0..10 {
            c.compose(SightingChange { kind: SightingEventKind::New, sighting: state(id, 1) });
        }
        assert_eq!(c.open_sightings(), 3);
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
        let m = EventMessage { kind: SightingEventKind::New, before: state(3, 1), after: state(3, 1) };
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "new");
        assert_eq!(v["after"]["modality"], "thermal");
        assert_eq!(v["after"]["box"], "gate");
        assert_eq!(v["after"]["label"], "person");
        assert_eq!(v["after"]["end_time"], serde_json::Value::Null);
    }
}
