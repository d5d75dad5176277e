//! `vireid gallery list|show|forget`, `vireid enrol`, `vireid query`.
