//! Running as a service: the shipped systemd files, notifications on a real
//! NOTIFY_SOCKET, `vireid run` under it, MQTT against a real mosquitto.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod files;
mod mqtt;
mod notify;
mod run;
