//! The gallery's SQLite database: the truth that survives restarts and crashes.
//!
//! WAL journal (readers never block the writer; a `kill -9` loses at most the
//! transaction in flight, never a committed one), `synchronous=FULL` so a
//! sighting whose event was emitted is on disk, schema versioned by
//! `PRAGMA user_version` with forward-only migrations.
//!
//! Errors are [`StoreError`]s: the database's path and a [`StoreErrorKind`] a
//! caller can act on (locked → retry, HTTP 503; corrupt → move the file aside).
//! Reads for the API and the CLI are here too, so no other module writes SQL.

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::harvest::{HarvestKind, HarvestRow};
use super::index::RowInfo;
use crate::core::time::now_ns;
use crate::core::{BBox, Light, Modality, Sighting};

/// Schema migrations; entry `i` takes the database from version `i` to `i+1`.
const MIGRATIONS: &[&str] = &[
    // v1: identities, exemplar features, sightings, day/night links.
    "CREATE TABLE identities (
        id INTEGER PRIMARY KEY,
        label TEXT,
        enrolled INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL,
        first_modality TEXT NOT NULL
     );
     CREATE TABLE features (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        modality TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        created_ns INTEGER NOT NULL
     );
     CREATE INDEX features_identity ON features(identity_id);
     CREATE TABLE sightings (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        camera TEXT NOT NULL,
        modality TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        start_pts_ns INTEGER,
        end_pts_ns INTEGER,
        best_pts_ns INTEGER,
        best_box TEXT NOT NULL,
        similarity REAL,
        matched_modality TEXT,
        day_night_link INTEGER NOT NULL DEFAULT 0,
        crop_path TEXT,
        created_ns INTEGER NOT NULL
     );
     CREATE INDEX sightings_identity ON sightings(identity_id);
     CREATE INDEX sightings_created ON sightings(created_ns);
     CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
        from_modality TEXT NOT NULL,
        to_modality TEXT NOT NULL,
        similarity REAL NOT NULL,
        created_ns INTEGER NOT NULL
     );",
    // v2: enrolment images (watch-list reference crops), kept until the identity is forgotten.
    "CREATE TABLE enrol_images (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        modality TEXT NOT NULL,
        path TEXT NOT NULL,
        created_ns INTEGER NOT NULL
     );
     CREATE INDEX enrol_images_identity ON enrol_images(identity_id);",
    // v3: co-observation pairing. A sighting's partner from the box's other
    // modality (same person, same time), and how each day/night link was made.
    "ALTER TABLE sightings ADD COLUMN paired_sighting_id INTEGER;
     ALTER TABLE links ADD COLUMN via TEXT NOT NULL DEFAULT 'appearance';",
    // v4: identity and sighting ids are never reused. Without AUTOINCREMENT,
    // forgetting the newest identity handed its id to the next person, and
    // events already sent out would name the wrong one. SQLite cannot add
    // AUTOINCREMENT in place: rebuild both tables (run with foreign keys off,
    // so dropping the old table cascades nowhere; checked before commit).
    "CREATE TABLE identities_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT,
        enrolled INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL,
        first_modality TEXT NOT NULL
     );
     INSERT INTO identities_v4 (id, label, enrolled, created_ns, first_modality)
        SELECT id, label, enrolled, created_ns, first_modality FROM identities;
     DROP TABLE identities;
     ALTER TABLE identities_v4 RENAME TO identities;
     CREATE TABLE sightings_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        camera TEXT NOT NULL,
        modality TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        start_pts_ns INTEGER,
        end_pts_ns INTEGER,
        best_pts_ns INTEGER,
        best_box TEXT NOT NULL,
        similarity REAL,
        matched_modality TEXT,
        day_night_link INTEGER NOT NULL DEFAULT 0,
        crop_path TEXT,
        created_ns INTEGER NOT NULL,
        paired_sighting_id INTEGER
     );
     INSERT INTO sightings_v4 SELECT id, identity_id, camera, modality, track_id, start_ns, end_ns, start_pts_ns,
        end_pts_ns, best_pts_ns, best_box, similarity, matched_modality, day_night_link, crop_path, created_ns,
        paired_sighting_id FROM sightings;
     DROP TABLE sightings;
     ALTER TABLE sightings_v4 RENAME TO sightings;
     CREATE INDEX sightings_identity ON sightings(identity_id);
     CREATE INDEX sightings_created ON sightings(created_ns);",
    // v5: the harvest (`gallery::harvest`): track features of co-observed and
    // simultaneous tracks, in the base model's space, for `vireid adapt` and
    // self-calibrated thresholds. Rows go with either of their sightings.
    "CREATE TABLE harvest (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        a_sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
        b_sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
        a_modality TEXT NOT NULL,
        b_modality TEXT NOT NULL,
        a_feature BLOB NOT NULL,
        b_feature BLOB NOT NULL,
        space TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        UNIQUE (a_sighting_id, b_sighting_id)
     );
     CREATE INDEX harvest_kind ON harvest(kind, id);
     CREATE INDEX harvest_b ON harvest(b_sighting_id);",
    // v6: which feature space the stored exemplars are in (`gallery::harvest::FeatureSpace`):
    // the base model's fingerprint and the adapter applied on top, if any (its
    // mean_rgb ‖ mean_thermal ‖ weight as f32 LE). One row.
    "CREATE TABLE feature_space (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        base TEXT NOT NULL,
        adapter BLOB,
        updated_ns INTEGER NOT NULL
     );",
    // v7: the light an exemplar was seen in ('day', 'night'; NULL = unknown), so
    // thermal↔thermal across day and night gets its own threshold (`core::light`).
    "ALTER TABLE features ADD COLUMN light TEXT;",
];

/// How a day/night link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkVia {
    /// The track's feature matched the identity (its similarity is stored).
    Appearance,
    /// The box's other camera saw the same person at the same time (similarity stored as 0).
    CoObservation,
}

impl LinkVia {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkVia::Appearance => "appearance",
            LinkVia::CoObservation => "co_observation",
        }
    }
}

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What went wrong with the database, as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Another process holds it locked (another vireid on this state dir?): retry later.
    Locked,
    /// Damaged, or not a vireid gallery: nothing was changed; move it aside or restore a backup.
    Corrupt,
    /// It or its folder cannot be created or written: check the path and permissions.
    NotWritable,
    /// Written by a newer vireid: upgrade, or use another state dir.
    SchemaTooNew,
    /// Any other SQLite failure.
    Sqlite,
}

/// A gallery database error: which file, what kind, what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub path: PathBuf,
    pub kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    fn new(path: &Path, kind: StoreErrorKind, message: String) -> StoreError {
        StoreError { path: path.to_path_buf(), kind, message, source: None }
    }

    /// Classifies an SQLite error and says what to do about it.
    pub fn sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        let p = path.display();
        let (kind, message) = match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => (
                    StoreErrorKind::Locked,
                    format!("gallery database {p} is locked by another process (is another vireid running on this state dir?)"),
                ),
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt => (
                    StoreErrorKind::Corrupt,
                    format!(
                        "gallery database {p} is unreadable or corrupt; nothing was changed: move it aside \
                         (or restore a backup) and start again to create a new gallery"
                    ),
                ),
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::ReadOnly => (
                    StoreErrorKind::NotWritable,
                    format!("gallery database {p} cannot be opened for writing: check the path and its permissions"),
                ),
                _ => (StoreErrorKind::Sqlite, format!("gallery database {p}")),
            },
            _ => (StoreErrorKind::Sqlite, format!("gallery database {p}")),
        };
        StoreError { path: path.to_path_buf(), kind, message, source: Some(Box::new(e)) }
    }

    /// True when trying again later may succeed (the database was locked).
    pub fn is_locked(&self) -> bool {
        self.kind == StoreErrorKind::Locked
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One stored exemplar feature.
#[derive(Debug, Clone)]
pub struct StoredFeature {
    pub id: i64,
    pub identity_id: i64,
    pub modality: Modality,
    pub light: Option<Light>,
    pub vector: Vec<f32>,
}

impl StoredFeature {
    /// Its row in the in-memory index.
    pub fn row_info(&self) -> RowInfo {
        RowInfo { feature_id: self.id, identity_id: self.identity_id, modality: self.modality, light: self.light }
    }
}

/// An identity with what is known of it: for `vireid gallery list` and the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IdentitySummary {
    pub id: i64,
    /// Watch-list label, if enrolled with one.
    pub label: Option<String>,
    pub enrolled: bool,
    pub created_ns: i64,
    pub first_modality: Modality,
    /// First sighting (the creation time while there is none), ns since the epoch.
    pub first_seen_ns: i64,
    /// End of the last sighting; `None` while there is none (enrolled, never seen).
    pub last_seen_ns: Option<i64>,
    pub rgb_sightings: i64,
    pub thermal_sightings: i64,
    /// Exemplar features held for search.
    pub features: i64,
    /// Day/night links recorded.
    pub links: i64,
    /// The first sighting per modality that still has its crop.
    pub rgb_crop_sighting: Option<i64>,
    pub thermal_crop_sighting: Option<i64>,
    /// The first enrolment image, if enrolled from images.
    pub enrol_image: Option<i64>,
}

/// Which sightings to read, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SightingQuery {
    pub identity_id: Option<i64>,
    /// Sightings that ended at or after this, ns since the epoch.
    pub since_ns: Option<i64>,
    pub camera: Option<String>,
    pub modality: Option<Modality>,
    pub limit: Option<usize>,
}

pub struct GalleryStore {
    conn: Connection,
    path: PathBuf,
}

fn modality_of(s: String) -> rusqlite::Result<Modality> {
    s.parse().map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

pub fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The columns [`sighting_row`] reads, in order (`s` = sightings, `i` = identities).
const SIGHTING_COLUMNS: &str = "s.id, s.identity_id, i.label,
        (i.enrolled = 0 AND s.id = (SELECT MIN(f.id) FROM sightings f WHERE f.identity_id = s.identity_id)),
        s.camera, s.modality, s.track_id, s.start_ns, s.end_ns, s.start_pts_ns, s.end_pts_ns, s.best_pts_ns,
        s.best_box, s.similarity, s.matched_modality, s.day_night_link, s.crop_path, s.paired_sighting_id
     FROM sightings s JOIN identities i ON i.id = s.identity_id";

/// The SQL row form of a [`Sighting`] (see `core::sighting`).
fn sighting_row(r: &rusqlite::Row) -> rusqlite::Result<Sighting> {
    let b: String = r.get(12)?;
    let v: Vec<f32> = serde_json::from_str(&b).unwrap_or_default();
    let best_box = if v.len() == 4 { BBox::new(v[0], v[1], v[2], v[3]) } else { BBox::default() };
    Ok(Sighting {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        label: r.get(2)?,
        new_identity: r.get::<_, i64>(3)? != 0,
        camera: r.get(4)?,
        modality: modality_of(r.get(5)?)?,
        track_id: r.get::<_, i64>(6)? as u64,
        start_ns: r.get(7)?,
        end_ns: r.get(8)?,
        start_pts_ns: r.get(9)?,
        end_pts_ns: r.get(10)?,
        best_pts_ns: r.get(11)?,
        best_box,
        similarity: r.get(13)?,
        matched_modality: r.get::<_, Option<String>>(14)?.map(modality_of).transpose()?,
        day_night_link: r.get::<_, i64>(15)? != 0,
        crop_path: r.get(16)?,
        paired_sighting_id: r.get(17)?,
    })
}

/// The columns [`summary_row`] reads.
const SUMMARY_SQL: &str = "SELECT i.id, i.label, i.enrolled, i.created_ns, i.first_modality,
        COALESCE(MIN(s.start_ns), i.created_ns), MAX(s.end_ns),
        COALESCE(SUM(s.modality = 'rgb'), 0), COALESCE(SUM(s.modality = 'thermal'), 0),
        (SELECT count(*) FROM features f WHERE f.identity_id = i.id),
        (SELECT count(*) FROM links l WHERE l.identity_id = i.id),
        (SELECT s2.id FROM sightings s2 WHERE s2.identity_id = i.id AND s2.modality = 'rgb' AND s2.crop_path IS NOT NULL ORDER BY s2.id LIMIT 1),
        (SELECT s3.id FROM sightings s3 WHERE s3.identity_id = i.id AND s3.modality = 'thermal' AND s3.crop_path IS NOT NULL ORDER BY s3.id LIMIT 1),
        (SELECT e.id FROM enrol_images e WHERE e.identity_id = i.id ORDER BY e.id LIMIT 1)
     FROM identities i LEFT JOIN sightings s ON s.identity_id = i.id";

fn summary_row(r: &rusqlite::Row) -> rusqlite::Result<IdentitySummary> {
    Ok(IdentitySummary {
        id: r.get(0)?,
        label: r.get(1)?,
        enrolled: r.get::<_, i64>(2)? != 0,
        created_ns: r.get(3)?,
        first_modality: modality_of(r.get(4)?)?,
        first_seen_ns: r.get(5)?,
        last_seen_ns: r.get(6)?,
        rgb_sightings: r.get(7)?,
        thermal_sightings: r.get(8)?,
        features: r.get(9)?,
        links: r.get(10)?,
        rgb_crop_sighting: r.get(11)?,
        thermal_crop_sighting: r.get(12)?,
        enrol_image: r.get(13)?,
    })
}

impl GalleryStore {
    /// Opens (creating if absent) and migrates the database.
    pub fn open(path: &Path, busy_timeout: Duration) -> StoreResult<GalleryStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError {
                source: Some(Box::new(e)),
                ..StoreError::new(
                    path,
                    StoreErrorKind::NotWritable,
                    format!("cannot create the gallery directory {}: check permissions", dir.display()),
                )
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::sqlite(path, e))?;
        conn.busy_timeout(busy_timeout).map_err(|e| StoreError::sqlite(path, e))?;
        let mut store = GalleryStore { conn, path: path.to_path_buf() };
        store.init()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::sqlite(&self.path, e)
    }

    fn init(&mut self) -> StoreResult<()> {
        let p = self.path.clone();
        let ex = |e| StoreError::sqlite(&p, e);
        // The first real read: a corrupt or foreign file fails here, before any write.
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(ex)?;
        let mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(ex)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("gallery database {} is not in WAL mode ({mode})", p.display());
        }
        // Foreign keys stay off while migrating (a table rebuild must not cascade); on after.
        // secure_delete: a deleted row's bytes are overwritten, not left in free pages (forget, retention).
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA secure_delete=ON;")
            .map_err(ex)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(
                &p,
                StoreErrorKind::SchemaTooNew,
                format!(
                    "gallery database {} has schema version {version}, newer than this vireid understands ({SCHEMA_VERSION}): \
                     upgrade vireid or use another state dir",
                    p.display()
                ),
            ));
        }
        if version == 0 {
            // A version-0 file with tables is not ours: refuse rather than mix schemas.
            let tables: i64 = self
                .conn
                .query_row("SELECT count(*) FROM sqlite_master WHERE type='table'", [], |r| r.get(0))
                .map_err(ex)?;
            if tables > 0 {
                return Err(StoreError::new(
                    &p,
                    StoreErrorKind::Corrupt,
                    format!(
                        "{} is an SQLite database but not a vireid gallery (it has tables but no vireid schema version): use another path",
                        p.display()
                    ),
                ));
            }
        }
        for v in version..SCHEMA_VERSION {
            let tx = self.conn.transaction().map_err(ex)?;
            tx.execute_batch(MIGRATIONS[v as usize]).map_err(ex)?;
            let dangling: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).map_err(ex)?;
            if dangling > 0 {
                return Err(StoreError::new(
                    &p,
                    StoreErrorKind::Corrupt,
                    format!(
                        "gallery database {}: migrating to schema v{} would leave {dangling} rows pointing at missing identities or sightings; \
                         that migration was rolled back: move the file aside or restore a backup",
                        p.display(),
                        v + 1
                    ),
                ));
            }
            tx.pragma_update(None, "user_version", v + 1).map_err(ex)?;
            tx.commit().map_err(ex)?;
            // A new file goes through every step: one line for it, not one per step.
            if version > 0 {
                tracing::info!("gallery database {} migrated to schema v{}", p.display(), v + 1);
            } else if v + 1 == SCHEMA_VERSION {
                tracing::info!("gallery database {} created (schema v{SCHEMA_VERSION})", p.display());
            }
        }
        self.conn.execute_batch("PRAGMA foreign_keys=ON;").map_err(ex)?;
        // Integrity of the pages we will read: cheap and catches a damaged file early.
        let check: String = self.conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(ex)?;
        if check != "ok" {
            return Err(StoreError::new(
                &p,
                StoreErrorKind::Corrupt,
                format!(
                    "gallery database {} failed its integrity check ({check}); nothing was changed: move it aside or restore a backup",
                    p.display()
                ),
            ));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The harvest rows of one kind in the feature space `space`, oldest first.
    pub fn harvest(&self, kind: HarvestKind, space: &str) -> StoreResult<Vec<HarvestRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a_sighting_id, b_sighting_id, a_modality, b_modality, a_feature, b_feature FROM harvest
                 WHERE kind = ?1 AND space = ?2 ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![kind.as_str(), space], |r| {
                Ok(HarvestRow {
                    kind,
                    a_sighting_id: r.get(0)?,
                    b_sighting_id: r.get(1)?,
                    a_modality: modality_of(r.get(2)?)?,
                    b_modality: modality_of(r.get(3)?)?,
                    a_feature: blob_to_vector(&r.get::<_, Vec<u8>>(4)?),
                    b_feature: blob_to_vector(&r.get::<_, Vec<u8>>(5)?),
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// How many harvest rows of each (feature space, kind).
    pub fn harvest_counts(&self) -> StoreResult<Vec<(String, HarvestKind, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT space, kind, count(*) FROM harvest GROUP BY space, kind ORDER BY space, kind")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (space, kind, n) = row.map_err(self.err())?;
            if let Some(k) = HarvestKind::ALL.into_iter().find(|k| k.as_str() == kind) {
                out.push((space, k, n));
            }
        }
        Ok(out)
    }

    /// The identity a sighting belongs to (None if it is gone).
    pub fn identity_of_sighting(&self, sighting_id: i64) -> StoreResult<Option<i64>> {
        self.conn
            .query_row("SELECT identity_id FROM sightings WHERE id = ?1", params![sighting_id], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// The stored exemplars' feature space: (base fingerprint, adapter blob), if recorded.
    pub fn feature_space(&self) -> StoreResult<Option<(String, Option<Vec<u8>>)>> {
        self.conn
            .query_row("SELECT base, adapter FROM feature_space WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(self.err())
    }

    pub fn load_features(&self) -> StoreResult<Vec<StoredFeature>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, identity_id, modality, vector, light FROM features ORDER BY id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredFeature {
                    id: r.get(0)?,
                    identity_id: r.get(1)?,
                    modality: modality_of(r.get(2)?)?,
                    vector: blob_to_vector(&r.get::<_, Vec<u8>>(3)?),
                    // An unknown word (a newer vireid's) reads as unknown light.
                    light: r.get::<_, Option<String>>(4)?.and_then(|l| l.parse().ok()),
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Runs `f` in one write transaction and commits: everything one sighting
    /// (or enrolment) changes goes in one. An error from `f` rolls it all back.
    pub fn write<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>) -> Result<T, E> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| StoreError::sqlite(&path, e))?;
        let mut w = Writer { tx, path: &path };
        let out = f(&mut w)?;
        w.tx.commit().map_err(|e| StoreError::sqlite(&path, e))?;
        Ok(out)
    }

    /// Records that a stored sighting has a partner from the box's other modality.
    /// Notes `paired_sighting_id` on a sighting stored without a partner. One
    /// that has its partner already keeps it: a long track co-observed with
    /// two shorter ones has both as partners ([`GalleryStore::partners_of`]),
    /// and overwriting lost the first.
    pub fn set_paired(&self, sighting_id: i64, paired_sighting_id: i64) -> StoreResult<()> {
        self.conn
            .execute(
                "UPDATE sightings SET paired_sighting_id = ?2 WHERE id = ?1 AND paired_sighting_id IS NULL",
                params![sighting_id, paired_sighting_id],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Every co-observed partner of each of `ids`, both ways (a sighting that
    /// names it, and the one it names), ascending: symmetric by construction.
    pub fn partners_of(&self, ids: &[i64]) -> StoreResult<std::collections::HashMap<i64, Vec<i64>>> {
        let wanted = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, paired_sighting_id FROM sightings WHERE paired_sighting_id IS NOT NULL
                   AND (id IN (SELECT value FROM json_each(?1)) OR paired_sighting_id IN (SELECT value FROM json_each(?1)))",
            )
            .map_err(self.err())?;
        let pairs = stmt
            .query_map(params![wanted], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())?;
        let mut out: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
        for (a, b) in pairs {
            out.entry(a).or_default().push(b);
            out.entry(b).or_default().push(a);
        }
        for partners in out.values_mut() {
            partners.sort_unstable();
            partners.dedup();
        }
        Ok(out)
    }

    pub fn identity_exists(&self, id: i64) -> StoreResult<bool> {
        self.conn
            .query_row("SELECT 1 FROM identities WHERE id = ?1", params![id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// Every identity, oldest first (`vireid gallery list`).
    pub fn list_identities(&self) -> StoreResult<Vec<IdentitySummary>> {
        self.summaries(&format!("{SUMMARY_SQL} GROUP BY i.id ORDER BY i.id"), params![])
    }

    /// A page of identities, most recently seen first (the API).
    pub fn recent_identities(&self, offset: usize, limit: usize) -> StoreResult<Vec<IdentitySummary>> {
        self.summaries(
            &format!("{SUMMARY_SQL} GROUP BY i.id ORDER BY 7 DESC, i.id DESC LIMIT ?1 OFFSET ?2"),
            params![limit as i64, offset as i64],
        )
    }

    pub fn identity_summary(&self, id: i64) -> StoreResult<Option<IdentitySummary>> {
        Ok(self.summaries(&format!("{SUMMARY_SQL} WHERE i.id = ?1 GROUP BY i.id"), params![id])?.pop())
    }

    fn summaries(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> StoreResult<Vec<IdentitySummary>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt.query_map(params, summary_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Every sighting (of one identity, or all), in the order they were stored.
    pub fn sightings_of(&self, identity_id: Option<i64>) -> StoreResult<Vec<Sighting>> {
        let sql = format!("SELECT {SIGHTING_COLUMNS} WHERE (?1 IS NULL OR s.identity_id = ?1) ORDER BY s.id");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt.query_map(params![identity_id], sighting_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Sightings matching `q`, newest first.
    pub fn recent_sightings(&self, q: &SightingQuery) -> StoreResult<Vec<Sighting>> {
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} WHERE (?1 IS NULL OR s.identity_id = ?1) AND (?2 IS NULL OR s.end_ns >= ?2)
               AND (?3 IS NULL OR s.camera = ?3) AND (?4 IS NULL OR s.modality = ?4)
             ORDER BY s.start_ns DESC, s.id DESC LIMIT ?5"
        );
        let limit = q.limit.map(|l| l as i64).unwrap_or(-1);
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(
                params![q.identity_id, q.since_ns, q.camera, q.modality.map(|m| m.as_str()), limit],
                sighting_row,
            )
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// An identity's enrolment images: (id, modality), oldest first.
    pub fn enrol_images_of(&self, identity_id: i64) -> StoreResult<Vec<(i64, Modality)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, modality FROM enrol_images WHERE identity_id = ?1 ORDER BY id")
            .map_err(self.err())?;
        let rows =
            stmt.query_map(params![identity_id], |r| Ok((r.get(0)?, modality_of(r.get(1)?)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// The stored crop file of a sighting, if it still has one.
    pub fn sighting_crop_path(&self, sighting_id: i64) -> StoreResult<Option<String>> {
        self.conn
            .query_row("SELECT crop_path FROM sightings WHERE id = ?1", params![sighting_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(self.err())
    }

    /// The file of an enrolment image.
    pub fn enrol_image_path(&self, image_id: i64) -> StoreResult<Option<String>> {
        self.conn
            .query_row("SELECT path FROM enrol_images WHERE id = ?1", params![image_id], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Deletes an identity and all its rows; returns the crop files to delete.
    pub fn forget(&mut self, identity_id: i64) -> StoreResult<Vec<String>> {
        let p = self.path.clone();
        let ex = |e| StoreError::sqlite(&p, e);
        let tx = self.conn.transaction().map_err(ex)?;
        let crops: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT crop_path FROM sightings WHERE identity_id = ?1 AND crop_path IS NOT NULL
                     UNION ALL SELECT path FROM enrol_images WHERE identity_id = ?1",
                )
                .map_err(ex)?;
            let rows = stmt.query_map(params![identity_id], |r| r.get(0)).map_err(ex)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(ex)?
        };
        // Explicit deletes (not only ON DELETE CASCADE) so nothing depends on the pragma.
        for sql in [
            "DELETE FROM harvest WHERE a_sighting_id IN (SELECT id FROM sightings WHERE identity_id = ?1)
                OR b_sighting_id IN (SELECT id FROM sightings WHERE identity_id = ?1)",
            "DELETE FROM enrol_images WHERE identity_id = ?1",
            "DELETE FROM links WHERE identity_id = ?1",
            "DELETE FROM sightings WHERE identity_id = ?1",
            "DELETE FROM features WHERE identity_id = ?1",
            "DELETE FROM identities WHERE id = ?1",
        ] {
            tx.execute(sql, params![identity_id]).map_err(ex)?;
        }
        tx.commit().map_err(ex)?;
        Ok(crops)
    }

    /// Deletes what is older than the retention cut-off (`[gallery] retention_days`):
    /// sightings and their links and harvest rows, exemplar features, and then
    /// identities left with neither — an enrolled identity's features and the
    /// identity itself stay when `keep_enrolled`. Returns counts and the crop
    /// and enrolment files to delete.
    pub fn expire(&mut self, older_than_ns: i64, keep_enrolled: bool) -> StoreResult<Expired> {
        let p = self.path.clone();
        let ex = |e| StoreError::sqlite(&p, e);
        let tx = self.conn.transaction().map_err(ex)?;
        let kept = if keep_enrolled { "(SELECT id FROM identities WHERE enrolled = 1)" } else { "(SELECT -1)" };
        let gone = "SELECT id FROM identities i WHERE i.id NOT IN KEPT
                AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.identity_id = i.id)
                AND NOT EXISTS (SELECT 1 FROM features f WHERE f.identity_id = i.id)"
            .replace("KEPT", kept);
        let files = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<String>> {
            let mut stmt = tx.prepare(sql).map_err(ex)?;
            let rows = stmt.query_map(p, |r| r.get(0)).map_err(ex)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(ex)
        };
        let mut out = Expired {
            files: files(
                "SELECT crop_path FROM sightings WHERE created_ns < ?1 AND crop_path IS NOT NULL",
                params![older_than_ns],
            )?,
            ..Expired::default()
        };
        let old = "SELECT id FROM sightings WHERE created_ns < ?1";
        let run = |sql: String| tx.execute(&sql, params![older_than_ns]).map_err(ex);
        run(format!("DELETE FROM harvest WHERE a_sighting_id IN ({old}) OR b_sighting_id IN ({old})"))?;
        run(format!("DELETE FROM links WHERE sighting_id IN ({old})"))?;
        run(format!("UPDATE sightings SET paired_sighting_id = NULL WHERE paired_sighting_id IN ({old})"))?;
        out.sightings = run("DELETE FROM sightings WHERE created_ns < ?1".into())?;
        out.features = run(format!("DELETE FROM features WHERE created_ns < ?1 AND identity_id NOT IN {kept}"))?;
        // Identities now empty, with their enrolment images (a kept identity keeps them).
        out.files.extend(files(&format!("SELECT path FROM enrol_images WHERE identity_id IN ({gone})"), &[])?);
        let run_all = |sql: String| tx.execute(&sql, []).map_err(ex);
        run_all(format!("DELETE FROM enrol_images WHERE identity_id IN ({gone})"))?;
        run_all(format!("DELETE FROM links WHERE identity_id IN ({gone})"))?;
        out.identities = run_all(format!("DELETE FROM identities WHERE id IN ({gone})"))?;
        tx.commit().map_err(ex)?;
        Ok(out)
    }

    /// Folds the write-ahead log into the database and truncates it, so rows
    /// just deleted leave no copy in `-wal` (with secure_delete, none in the
    /// database's free pages either). False when a reader kept it from finishing.
    pub fn checkpoint_truncate(&self) -> StoreResult<bool> {
        let busy: i64 = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).map_err(self.err())?;
        Ok(busy == 0)
    }

    /// Sightings whose crop is older than the retention cut-off: (id, path).
    pub fn expired_crops(&self, older_than_ns: i64) -> StoreResult<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, crop_path FROM sightings WHERE crop_path IS NOT NULL AND created_ns < ?1")
            .map_err(self.err())?;
        let rows = stmt.query_map(params![older_than_ns], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    pub fn clear_crop(&self, sighting_id: i64) -> StoreResult<()> {
        self.conn
            .execute("UPDATE sightings SET crop_path = NULL WHERE id = ?1", params![sighting_id])
            .map_err(self.err())?;
        Ok(())
    }

    /// (identities, sightings, day/night links).
    pub fn counts(&self) -> StoreResult<(i64, i64, i64)> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM identities), (SELECT count(*) FROM sightings), (SELECT count(*) FROM links)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(self.err())
    }

    /// Exemplar features stored.
    pub fn feature_count(&self) -> StoreResult<i64> {
        self.conn.query_row("SELECT count(*) FROM features", [], |r| r.get(0)).map_err(self.err())
    }

    /// Enrolled identity's label, if any.
    pub fn label_of(&self, identity_id: i64) -> StoreResult<Option<String>> {
        self.conn
            .query_row("SELECT label FROM identities WHERE id = ?1", params![identity_id], |r| r.get(0))
            .optional()
            .map(|o| o.flatten())
            .map_err(self.err())
    }

    /// The connection, for tests that look at the schema itself.
    #[cfg(test)]
    fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// What a retention sweep deleted ([`GalleryStore::expire`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Expired {
    pub sightings: usize,
    pub features: usize,
    pub identities: usize,
    /// Crop and enrolment image files to delete.
    pub files: Vec<String>,
}

/// One write transaction ([`GalleryStore::write`]): the inserts and updates a
/// sighting or an enrolment makes, committed together.
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl Writer<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::sqlite(self.path, e)
    }

    pub fn insert_identity(&mut self, label: Option<&str>, enrolled: bool, modality: Modality) -> StoreResult<i64> {
        self.tx
            .execute(
                "INSERT INTO identities (label, enrolled, created_ns, first_modality) VALUES (?1, ?2, ?3, ?4)",
                params![label, enrolled as i64, now_ns(), modality.as_str()],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn insert_feature(
        &mut self,
        identity_id: i64,
        modality: Modality,
        light: Option<Light>,
        v: &[f32],
    ) -> StoreResult<i64> {
        self.tx
            .execute(
                "INSERT INTO features (identity_id, modality, dim, vector, created_ns, light) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![identity_id, modality.as_str(), v.len() as i64, vector_to_blob(v), now_ns(), light.map(Light::as_str)],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn delete_feature(&mut self, feature_id: i64) -> StoreResult<()> {
        self.tx.execute("DELETE FROM features WHERE id = ?1", params![feature_id]).map_err(self.err())?;
        Ok(())
    }

    /// Inserts the SQL row form of a sighting (its `id`, `label` and
    /// `new_identity` are not stored: the id is assigned here, the others
    /// come from the identity); returns the new id.
    pub fn insert_sighting(&mut self, s: &Sighting) -> StoreResult<i64> {
        self.tx
            .execute(
                "INSERT INTO sightings (identity_id, camera, modality, track_id, start_ns, end_ns, start_pts_ns, end_pts_ns,
                    best_pts_ns, best_box, similarity, matched_modality, day_night_link, crop_path, created_ns, paired_sighting_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    s.identity_id,
                    s.camera,
                    s.modality.as_str(),
                    s.track_id as i64,
                    s.start_ns,
                    s.end_ns,
                    s.start_pts_ns,
                    s.end_pts_ns,
                    s.best_pts_ns,
                    serde_json::to_string(&[s.best_box.x, s.best_box.y, s.best_box.w, s.best_box.h]).unwrap_or_default(),
                    s.similarity,
                    s.matched_modality.map(|m| m.as_str()),
                    s.day_night_link as i64,
                    s.crop_path,
                    now_ns(),
                    s.paired_sighting_id
                ],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Records which feature space the exemplars are in.
    pub fn set_feature_space(&mut self, base: &str, adapter: Option<&[u8]>) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO feature_space (id, base, adapter, updated_ns) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET base = ?1, adapter = ?2, updated_ns = ?3",
                params![base, adapter, now_ns()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Rewrites an exemplar's vector (moving the gallery to a new feature space).
    pub fn update_feature(&mut self, feature_id: i64, v: &[f32]) -> StoreResult<()> {
        self.tx
            .execute("UPDATE features SET vector = ?2 WHERE id = ?1", params![feature_id, vector_to_blob(v)])
            .map_err(self.err())?;
        Ok(())
    }

    /// A harvest row (`gallery::harvest`); a pair already stored is ignored.
    pub fn insert_harvest(&mut self, r: &HarvestRow, space: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO harvest (kind, a_sighting_id, b_sighting_id, a_modality, b_modality, a_feature, b_feature,
                    space, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    r.kind.as_str(),
                    r.a_sighting_id,
                    r.b_sighting_id,
                    r.a_modality.as_str(),
                    r.b_modality.as_str(),
                    vector_to_blob(&r.a_feature),
                    vector_to_blob(&r.b_feature),
                    space,
                    now_ns()
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Keeps the newest `keep` rows of a harvest kind.
    pub fn prune_harvest(&mut self, kind: HarvestKind, keep: usize) -> StoreResult<()> {
        self.tx
            .execute(
                "DELETE FROM harvest WHERE kind = ?1 AND id <= (SELECT id FROM harvest WHERE kind = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![kind.as_str(), keep as i64],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn insert_enrol_image(&mut self, identity_id: i64, modality: Modality, path: &str) -> StoreResult<i64> {
        self.tx
            .execute(
                "INSERT INTO enrol_images (identity_id, modality, path, created_ns) VALUES (?1, ?2, ?3, ?4)",
                params![identity_id, modality.as_str(), path, now_ns()],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn set_crop_path(&mut self, sighting_id: i64, path: &str) -> StoreResult<()> {
        self.tx
            .execute("UPDATE sightings SET crop_path = ?2 WHERE id = ?1", params![sighting_id, path])
            .map_err(self.err())?;
        Ok(())
    }

    pub fn insert_link(
        &mut self,
        identity_id: i64,
        sighting_id: i64,
        from: Modality,
        to: Modality,
        similarity: Option<f32>,
        via: LinkVia,
    ) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO links (identity_id, sighting_id, from_modality, to_modality, similarity, created_ns, via) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![identity_id, sighting_id, from.as_str(), to.as_str(), similarity.unwrap_or(0.0), now_ns(), via.as_str()],
            )
            .map_err(self.err())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 database (as vireid 0.1 wrote it) migrates with every row kept,
    /// and from then on a forgotten identity's id is never handed out again.
    #[test]
    fn v3_database_migrates_and_ids_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gallery.db");
        {
            let mut c = Connection::open(&path).unwrap();
            let tx = c.transaction().unwrap();
            for m in &MIGRATIONS[..3] {
                tx.execute_batch(m).unwrap();
            }
            tx.execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO identities (id, created_ns, first_modality) VALUES (1, 1, 'rgb'), (2, 2, 'thermal');
                 INSERT INTO features (identity_id, modality, dim, vector, created_ns) VALUES (1, 'rgb', 1, x'0000803f', 1);
                 INSERT INTO sightings (id, identity_id, camera, modality, track_id, start_ns, end_ns, best_box, created_ns, paired_sighting_id)
                    VALUES (1, 1, 'rgb', 'rgb', 7, 1, 2, '[0,0,1,1]', 3, 2), (2, 2, 'thermal', 'thermal', 8, 1, 2, '[0,0,1,1]', 3, 1);
                 INSERT INTO links (identity_id, sighting_id, from_modality, to_modality, similarity, created_ns, via)
                    VALUES (2, 2, 'thermal', 'rgb', 0.0, 3, 'co_observation');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let mut store = GalleryStore::open(&path, Duration::from_secs(1)).unwrap();
        let version: i64 = store.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(store.counts().unwrap(), (2, 2, 1), "identities, sightings, links all kept");
        let paired: Option<i64> =
            store.conn().query_row("SELECT paired_sighting_id FROM sightings WHERE id = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(paired, Some(1));
        assert_eq!(store.load_features().unwrap().len(), 1);
        // Forgetting still cascades through the rebuilt tables.
        store.forget(2).unwrap();
        assert_eq!(store.counts().unwrap(), (1, 1, 0));
        // The newest identity (2) and sighting (2) were forgotten: the next ones are 3, not 2 again.
        let tx = store.conn.transaction().unwrap();
        let id: i64 = tx
            .query_row("INSERT INTO identities (created_ns, first_modality) VALUES (4, 'rgb') RETURNING id", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(id, 3);
        let row: i64 = tx
            .query_row(
                "INSERT INTO sightings (identity_id, camera, modality, track_id, start_ns, end_ns, best_box, created_ns)
                 VALUES (3, 'rgb', 'rgb', 9, 1, 2, '[0,0,1,1]', 4) RETURNING id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(row, 3);
        tx.commit().unwrap();
    }
}
