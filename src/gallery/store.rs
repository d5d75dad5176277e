//! The gallery's SQLite database: the truth that survives restarts and crashes.
//!
//! WAL journal (readers never block the writer; a `kill -9` loses at most the
//! transaction in flight, never a committed one), `synchronous=FULL` so a
//! sighting whose event was emitted is on disk, schema versioned by
//! `PRAGMA user_version` with forward-only migrations.

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bbox::BBox;
use crate::modality::Modality;

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

/// One stored exemplar feature.
#[derive(Debug, Clone)]
pub struct StoredFeature {
    pub id: i64,
    pub identity_id: i64,
    pub modality: Modality,
    pub vector: Vec<f32>,
}

/// A sighting row as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SightingRow {
    pub id: i64,
    pub identity_id: i64,
    pub camera: String,
    pub modality: Modality,
    pub track_id: u64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub start_pts_ns: Option<i64>,
    pub end_pts_ns: Option<i64>,
    pub best_pts_ns: Option<i64>,
    pub best_box: BBox,
    pub similarity: Option<f32>,
    pub matched_modality: Option<Modality>,
    pub day_night_link: bool,
    pub crop_path: Option<String>,
    /// The sighting of the box's other modality that saw the same person at the same time.
    pub paired_sighting_id: Option<i64>,
}

/// An identity with its counts, for `gallery list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentitySummary {
    pub id: i64,
    pub label: Option<String>,
    pub enrolled: bool,
    pub created_ns: i64,
    pub first_modality: Modality,
    pub rgb_sightings: i64,
    pub thermal_sightings: i64,
    pub features: i64,
    pub links: i64,
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

/// Turns SQLite's terse errors into ones that say what to do.
pub(crate) fn explain(path: &Path, e: rusqlite::Error) -> anyhow::Error {
    let text = e.to_string();
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                return anyhow!(
                    "gallery database {} is locked by another process (is another vireid running on this state dir?): {text}",
                    path.display()
                )
            }
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt => {
                return anyhow!(
                    "gallery database {} is unreadable or corrupt ({text}); nothing was changed: move it aside \
                     (or restore a backup) and start again to create a new gallery",
                    path.display()
                )
            }
            rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::ReadOnly => {
                return anyhow!("gallery database {} cannot be opened for writing ({text}): check the path and its permissions", path.display())
            }
            _ => {}
        }
    }
    anyhow!("gallery database {}: {text}", path.display())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl GalleryStore {
    /// Opens (creating if absent) and migrates the database.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<GalleryStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the gallery directory {}: check permissions", dir.display()))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| explain(path, e))?;
        conn.busy_timeout(busy_timeout).map_err(|e| explain(path, e))?;
        let mut store = GalleryStore { conn, path: path.to_path_buf() };
        store.init().map_err(|e| e.context(format!("cannot open gallery database {}", path.display())))?;
        Ok(store)
    }

    fn init(&mut self) -> Result<()> {
        let p = self.path.clone();
        // The first real read: a corrupt or foreign file fails here, before any write.
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| explain(&p, e))?;
        let mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| explain(&p, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("gallery database {} is not in WAL mode ({mode})", p.display());
        }
        // Foreign keys stay off while migrating (a table rebuild must not cascade); on after.
        self.conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;").map_err(|e| explain(&p, e))?;
        if version > SCHEMA_VERSION {
            bail!(
                "gallery database {} has schema version {version}, newer than this vireid understands ({SCHEMA_VERSION}): \
                 upgrade vireid or use another state dir",
                p.display()
            );
        }
        if version == 0 {
            // A version-0 file with tables is not ours: refuse rather than mix schemas.
            let tables: i64 = self
                .conn
                .query_row("SELECT count(*) FROM sqlite_master WHERE type='table'", [], |r| r.get(0))
                .map_err(|e| explain(&p, e))?;
            if tables > 0 {
                bail!("{} is an SQLite database but not a vireid gallery (it has tables but no vireid schema version): use another path", p.display());
            }
        }
        for v in version..SCHEMA_VERSION {
            let tx = self.conn.transaction().map_err(|e| explain(&p, e))?;
            tx.execute_batch(MIGRATIONS[v as usize]).map_err(|e| explain(&p, e))?;
            let dangling: i64 = tx
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
                .map_err(|e| explain(&p, e))?;
            if dangling > 0 {
                bail!(
                    "gallery database {}: migrating to schema v{} would leave {dangling} rows pointing at missing identities or sightings; \
                     that migration was rolled back: move the file aside or restore a backup",
                    p.display(),
                    v + 1
                );
            }
            tx.pragma_update(None, "user_version", v + 1).map_err(|e| explain(&p, e))?;
            tx.commit().map_err(|e| explain(&p, e))?;
            tracing::info!("gallery database {} migrated to schema v{}", p.display(), v + 1);
        }
        self.conn.execute_batch("PRAGMA foreign_keys=ON;").map_err(|e| explain(&p, e))?;
        // Integrity of the pages we will read: cheap and catches a damaged file early.
        let check: String = self.conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| explain(&p, e))?;
        if check != "ok" {
            bail!("gallery database {} failed its integrity check ({check}); nothing was changed: move it aside or restore a backup", p.display());
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load_features(&self) -> Result<Vec<StoredFeature>> {
        let mut stmt = self.conn.prepare("SELECT id, identity_id, modality, vector FROM features ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredFeature {
                id: r.get(0)?,
                identity_id: r.get(1)?,
                modality: modality_of(r.get(2)?)?,
                vector: blob_to_vector(&r.get::<_, Vec<u8>>(3)?),
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| explain(&self.path, e))
    }

    /// Starts a write transaction; everything one sighting changes goes in one.
    pub fn transaction(&mut self) -> Result<rusqlite::Transaction<'_>> {
        let p = self.path.clone();
        self.conn.transaction().map_err(|e| explain(&p, e))
    }

    pub fn explain(&self, e: rusqlite::Error) -> anyhow::Error {
        explain(&self.path, e)
    }

    pub fn insert_identity(tx: &rusqlite::Transaction, label: Option<&str>, enrolled: bool, modality: Modality) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO identities (label, enrolled, created_ns, first_modality) VALUES (?1, ?2, ?3, ?4)",
            params![label, enrolled as i64, now_ns(), modality.as_str()],
        )?;
        Ok(tx.last_insert_rowid())
    }

    pub fn insert_feature(tx: &rusqlite::Transaction, identity_id: i64, modality: Modality, v: &[f32]) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO features (identity_id, modality, dim, vector, created_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![identity_id, modality.as_str(), v.len() as i64, vector_to_blob(v), now_ns()],
        )?;
        Ok(tx.last_insert_rowid())
    }

    pub fn delete_feature(tx: &rusqlite::Transaction, feature_id: i64) -> rusqlite::Result<()> {
        tx.execute("DELETE FROM features WHERE id = ?1", params![feature_id])?;
        Ok(())
    }

    pub fn insert_sighting(tx: &rusqlite::Transaction, s: &SightingRow) -> rusqlite::Result<i64> {
        tx.execute(
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
        )?;
        Ok(tx.last_insert_rowid())
    }

    pub fn insert_enrol_image(tx: &rusqlite::Transaction, identity_id: i64, modality: Modality, path: &str) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO enrol_images (identity_id, modality, path, created_ns) VALUES (?1, ?2, ?3, ?4)",
            params![identity_id, modality.as_str(), path, now_ns()],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// The connection, for read-only queries of other modules (the API adapter).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn set_crop_path(tx: &rusqlite::Transaction, sighting_id: i64, path: &str) -> rusqlite::Result<()> {
        tx.execute("UPDATE sightings SET crop_path = ?2 WHERE id = ?1", params![sighting_id, path])?;
        Ok(())
    }

    pub fn insert_link(
        tx: &rusqlite::Transaction,
        identity_id: i64,
        sighting_id: i64,
        from: Modality,
        to: Modality,
        similarity: Option<f32>,
        via: LinkVia,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO links (identity_id, sighting_id, from_modality, to_modality, similarity, created_ns, via) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![identity_id, sighting_id, from.as_str(), to.as_str(), similarity.unwrap_or(0.0), now_ns(), via.as_str()],
        )?;
        Ok(())
    }

    /// Records that a stored sighting has a partner from the box's other modality.
    pub fn set_paired(&self, sighting_id: i64, paired_sighting_id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE sightings SET paired_sighting_id = ?2 WHERE id = ?1", params![sighting_id, paired_sighting_id])
            .map_err(|e| explain(&self.path, e))?;
        Ok(())
    }

    pub fn identity_exists(&self, id: i64) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM identities WHERE id = ?1", params![id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| explain(&self.path, e))
    }

    pub fn list_identities(&self) -> Result<Vec<IdentitySummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT i.id, i.label, i.enrolled, i.created_ns, i.first_modality,
                (SELECT count(*) FROM sightings s WHERE s.identity_id = i.id AND s.modality = 'rgb'),
                (SELECT count(*) FROM sightings s WHERE s.identity_id = i.id AND s.modality = 'thermal'),
                (SELECT count(*) FROM features f WHERE f.identity_id = i.id),
                (SELECT count(*) FROM links l WHERE l.identity_id = i.id)
             FROM identities i ORDER BY i.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IdentitySummary {
                id: r.get(0)?,
                label: r.get(1)?,
                enrolled: r.get::<_, i64>(2)? != 0,
                created_ns: r.get(3)?,
                first_modality: modality_of(r.get(4)?)?,
                rgb_sightings: r.get(5)?,
                thermal_sightings: r.get(6)?,
                features: r.get(7)?,
                links: r.get(8)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| explain(&self.path, e))
    }

    pub fn sightings_of(&self, identity_id: Option<i64>) -> Result<Vec<SightingRow>> {
        let sql = "SELECT id, identity_id, camera, modality, track_id, start_ns, end_ns, start_pts_ns, end_pts_ns, best_pts_ns,
                best_box, similarity, matched_modality, day_night_link, crop_path, paired_sighting_id
             FROM sightings WHERE (?1 IS NULL OR identity_id = ?1) ORDER BY id";
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params![identity_id], |r| {
            let b: String = r.get(10)?;
            let v: Vec<f32> = serde_json::from_str(&b).unwrap_or_default();
            let best_box = if v.len() == 4 { BBox::new(v[0], v[1], v[2], v[3]) } else { BBox::default() };
            Ok(SightingRow {
                id: r.get(0)?,
                identity_id: r.get(1)?,
                camera: r.get(2)?,
                modality: modality_of(r.get(3)?)?,
                track_id: r.get::<_, i64>(4)? as u64,
                start_ns: r.get(5)?,
                end_ns: r.get(6)?,
                start_pts_ns: r.get(7)?,
                end_pts_ns: r.get(8)?,
                best_pts_ns: r.get(9)?,
                best_box,
                similarity: r.get(11)?,
                matched_modality: r.get::<_, Option<String>>(12)?.map(modality_of).transpose()?,
                day_night_link: r.get::<_, i64>(13)? != 0,
                crop_path: r.get(14)?,
                paired_sighting_id: r.get(15)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| explain(&self.path, e))
    }

    /// Deletes an identity and all its rows; returns the crop files to delete.
    pub fn forget(&mut self, identity_id: i64) -> Result<Vec<String>> {
        let p = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| explain(&p, e))?;
        let crops: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT crop_path FROM sightings WHERE identity_id = ?1 AND crop_path IS NOT NULL
                 UNION ALL SELECT path FROM enrol_images WHERE identity_id = ?1",
            )?;
            let rows = stmt.query_map(params![identity_id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| explain(&p, e))?
        };
        // Explicit deletes (not only ON DELETE CASCADE) so nothing depends on the pragma.
        for sql in [
            "DELETE FROM enrol_images WHERE identity_id = ?1",
            "DELETE FROM links WHERE identity_id = ?1",
            "DELETE FROM sightings WHERE identity_id = ?1",
            "DELETE FROM features WHERE identity_id = ?1",
            "DELETE FROM identities WHERE id = ?1",
        ] {
            tx.execute(sql, params![identity_id]).map_err(|e| explain(&p, e))?;
        }
        tx.commit().map_err(|e| explain(&p, e))?;
        Ok(crops)
    }

    /// Sightings whose crop is older than the retention cut-off: (id, path).
    pub fn expired_crops(&self, older_than_ns: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt =
            self.conn.prepare("SELECT id, crop_path FROM sightings WHERE crop_path IS NOT NULL AND created_ns < ?1")?;
        let rows = stmt.query_map(params![older_than_ns], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| explain(&self.path, e))
    }

    pub fn clear_crop(&self, sighting_id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE sightings SET crop_path = NULL WHERE id = ?1", params![sighting_id])
            .map_err(|e| explain(&self.path, e))?;
        Ok(())
    }

    pub fn counts(&self) -> Result<(i64, i64, i64)> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM identities), (SELECT count(*) FROM sightings), (SELECT count(*) FROM links)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| explain(&self.path, e))
    }

    /// Enrolled identity's label, if any.
    pub fn label_of(&self, identity_id: i64) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT label FROM identities WHERE id = ?1", params![identity_id], |r| r.get(0))
            .optional()
            .map(|o| o.flatten())
            .map_err(|e| explain(&self.path, e))
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
        let paired: Option<i64> = store.conn().query_row("SELECT paired_sighting_id FROM sightings WHERE id = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(paired, Some(1));
        assert_eq!(store.load_features().unwrap().len(), 1);
        // Forgetting still cascades through the rebuilt tables.
        store.forget(2).unwrap();
        assert_eq!(store.counts().unwrap(), (1, 1, 0));
        // The newest identity (2) and sighting (2) were forgotten: the next ones are 3, not 2 again.
        let tx = store.transaction().unwrap();
        assert_eq!(GalleryStore::insert_identity(&tx, None, false, Modality::Rgb).unwrap(), 3);
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
