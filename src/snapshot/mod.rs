//! Snapshots: the whole store plus the log positions it covers, on disk, so a restarted replica
//! resumes instead of replaying the whole log.
//!
//! Consistency without stopping the consumer: the positions are read first, then the store is
//! walked under per-shard read locks. The state written therefore holds every event below the
//! positions, and maybe some above; those are read again after a restore and change nothing,
//! because applying an event twice is a no-op. So neither queries nor ingestion wait for a
//! snapshot.
//!
//! Files: `snapshot-<created ms>.rsnap`, written to a temporary name, fsynced, renamed, and the
//! directory fsynced; the newest `keep` are kept. A write that fails deletes its temporary file,
//! and temporary files left by a crash are deleted at start (restore). On start the newest file
//! that decodes is used; a torn or corrupt one is logged and skipped for the next older one.

pub mod codec;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{now_ms, EpochMs};
use crate::fold::Store;
use crate::metrics::Metrics;
use crate::progress::Positions;
use crate::shutdown::Shutdown;

pub use codec::{DecodeError, Header};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".rsnap";
/// Prefix of a snapshot being written (`.tmp-snapshot-<ms>.rsnap`), hidden from `list`.
const TEMP_PREFIX: &str = ".tmp-";

/// A snapshot directory.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
    keep: usize,
}

/// What a successful write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: usize,
    pub duration: Duration,
}

/// What a restore found.
#[derive(Debug, Clone)]
pub struct Restored {
    pub path: PathBuf,
    pub header: Header,
    pub bytes: usize,
    pub duration: Duration,
}

impl SnapshotDir {
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        SnapshotDir {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Snapshot files, newest first.
    pub fn list(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut files: Vec<(EpochMs, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let ms = name
                    .strip_prefix(PREFIX)?
                    .strip_suffix(SUFFIX)?
                    .parse()
                    .ok()?;
                Some((ms, e.path()))
            })
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(files.into_iter().map(|(_, p)| p).collect())
    }

    /// Writes a snapshot of `store` at `positions` atomically, then prunes old ones.
    pub fn write(
        &self,
        store: &Store,
        positions: &Positions,
        topic: &str,
    ) -> Result<Written, SnapshotError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        // Never reuse a name: two snapshots in the same millisecond get distinct, ordered names.
        let newest = self
            .list()?
            .first()
            .and_then(|p| {
                p.file_name()?
                    .to_str()?
                    .strip_prefix(PREFIX)?
                    .strip_suffix(SUFFIX)?
                    .parse::<EpochMs>()
                    .ok()
            })
            .unwrap_or(0);
        let created = now_ms().max(newest.saturating_add(1));
        self.write_named(store, positions, topic, created)
    }

    /// [`SnapshotDir::write`] under the name of `created` (ms), which must be new.
    fn write_named(
        &self,
        store: &Store,
        positions: &Positions,
        topic: &str,
        created: EpochMs,
    ) -> Result<Written, SnapshotError> {
        let started = Instant::now();
        let bytes = codec::encode(store, positions, topic, created);
        let name = format!("{PREFIX}{created:020}{SUFFIX}");
        let path = self.dir.join(&name);
        let (tmp, mut f) = TempFile::create(self.dir.join(format!("{TEMP_PREFIX}{name}")))?;
        f.write_all(&bytes).map_err(io(&tmp.path))?;
        f.sync_all().map_err(io(&tmp.path))?;
        drop(f);
        tmp.rename_to(&path)?;
        // The rename is durable only once the directory entry is.
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        for old in self.list()?.into_iter().skip(self.keep) {
            if let Err(e) = fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot delete old snapshot");
            }
        }
        Ok(Written {
            path,
            bytes: bytes.len(),
            duration: started.elapsed(),
        })
    }

    /// Deletes temporary files left by writes that never finished (a crash between create and
    /// rename); returns how many. Only for a directory no writer is using: at start.
    pub fn sweep_temp_files(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let is_temp = name.to_str().is_some_and(|n| {
                n.strip_prefix(TEMP_PREFIX)
                    .is_some_and(|rest| rest.starts_with(PREFIX))
            });
            if !is_temp || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot delete a stale temporary snapshot file")
                }
            }
        }
        if removed > 0 {
            tracing::info!(dir = %self.dir.display(), removed, "deleted stale temporary snapshot files");
        }
        removed
    }

    /// Loads the newest valid snapshot for `topic` into `store` (which must be empty). Invalid
    /// files are logged and skipped; a snapshot of another topic is ignored. `None`: nothing
    /// usable, replay from the beginning. Stale temporary files are swept first.
    pub fn restore(&self, store: &Store, topic: &str) -> Result<Option<Restored>, SnapshotError> {
        self.sweep_temp_files();
        for path in self.list()? {
            let started = Instant::now();
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read snapshot; trying an older one");
                    continue;
                }
            };
            let (header, reader) = match codec::read_header(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "invalid snapshot skipped; trying an older one");
                    continue;
                }
            };
            if header.topic != topic {
                tracing::warn!(
                    path = %path.display(),
                    snapshot_topic = %header.topic,
                    topic,
                    "snapshot is of another topic; ignored"
                );
                continue;
            }
            codec::restore_into(&header, reader, store).map_err(|source| {
                SnapshotError::Decode {
                    path: path.clone(),
                    source,
                }
            })?;
            return Ok(Some(Restored {
                path,
                header,
                bytes: bytes.len(),
                duration: started.elapsed(),
            }));
        }
        Ok(None)
    }
}

/// A temporary file that deletes itself unless renamed into place: a write that fails after
/// creating it (full disk, a rename refused) leaves nothing behind.
struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl TempFile {
    fn create(path: PathBuf) -> Result<(TempFile, fs::File), SnapshotError> {
        let file = fs::File::create(&path).map_err(io(&path))?;
        let guard = TempFile {
            path,
            renamed: false,
        };
        Ok((guard, file))
    }

    fn rename_to(mut self, to: &Path) -> Result<(), SnapshotError> {
        fs::rename(&self.path, to).map_err(io(to))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.renamed {
            return;
        }
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot delete a temporary snapshot file");
        }
    }
}

/// Writes snapshots every `interval` on a thread of its own until told to stop.
pub struct Snapshotter {
    stop: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Snapshotter {
    /// `positions` is called before each walk of the store (see the module docs for why that
    /// order makes the pair consistent). Runs until `shutdown` or [`Snapshotter::stop`].
    pub fn start(
        dir: SnapshotDir,
        interval: Duration,
        store: Arc<Store>,
        topic: String,
        metrics: Arc<Metrics>,
        positions: impl Fn() -> Positions + Send + 'static,
        shutdown: &Shutdown,
    ) -> std::io::Result<Snapshotter> {
        let stop = shutdown.child();
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                signal.clone().supervise("snapshot writer", || {
                    while !signal.sleep(interval) {
                        let at = positions();
                        // A failed periodic write is logged and counted; the next may succeed.
                        let _ = write_and_report(&dir, &store, &at, &topic, &metrics);
                    }
                })
            })?;
        Ok(Snapshotter {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the periodic writer (the final snapshot is the caller's, once ingestion stopped).
    pub fn stop(mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads the newest valid snapshot into `store`, with its log line and metrics; the positions
/// to resume from (empty: read the log from the beginning).
pub fn restore_and_report(
    dir: &SnapshotDir,
    store: &Store,
    topic: &str,
    metrics: &Metrics,
) -> Result<Positions, SnapshotError> {
    let Some(r) = dir.restore(store, topic)? else {
        tracing::info!(dir = %dir.path().display(), "no usable snapshot; reading the log from the beginning");
        return Ok(Positions::new());
    };
    log_done(
        "restored snapshot; resuming from its offsets",
        &r.path,
        r.bytes,
        r.duration,
        store,
        &r.header.positions,
    );
    metrics.snapshot_taken_at(r.header.created_ms);
    Ok(r.header.positions)
}

/// The log line of a snapshot written or restored.
fn log_done(what: &str, path: &Path, bytes: usize, took: Duration, store: &Store, at: &Positions) {
    tracing::info!(
        path = %path.display(),
        bytes,
        ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        tasks = store.tasks_tracked(),
        calls = store.calls_tracked(),
        positions = ?at,
        "{what}"
    );
}

/// One write, with its log line and metrics. A failure is logged and counted; the previous
/// snapshot stays valid, so the caller decides whether it matters (the final one does).
pub fn write_and_report(
    dir: &SnapshotDir,
    store: &Store,
    positions: &Positions,
    topic: &str,
    metrics: &Metrics,
) -> Result<Written, SnapshotError> {
    match dir.write(store, positions, topic) {
        Ok(w) => {
            metrics.snapshot_written(w.bytes, w.duration.as_secs_f64(), now_ms());
            log_done(
                "snapshot written",
                &w.path,
                w.bytes,
                w.duration,
                store,
                positions,
            );
            Ok(w)
        }
        Err(e) => {
            metrics.snapshot_failed();
            tracing::error!(error = %e, "snapshot failed");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
