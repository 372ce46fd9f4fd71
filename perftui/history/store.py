"""Run history: a TinyDB index sharded by month, plus one JSON document per run.

Why these layers: TinyDB parses and rewrites its whole file on every operation, and 5,000 full
run records (tens of KB each) would make `history list` and `compare` parse hundreds of MB. So
the index holds only what listing, filtering and resolving need (a small summary per run), and
each full record lives in `runs/<run_id>.json.gz` (gzipped JSON, about 40 KB for 3 profiles ×
3 runs × 2 phases with histograms). One index file for 20,000 runs is 11 MB, and rewriting it
made each add take 0.4 s; so the summaries are split by the month the run started
(`perftui-2026-11.json`, `perftui-undated.json`; each a TinyDB file), and an add rewrites one
month only. `perftui.json` is the catalog: the schema version, and proof that the shards are
complete. Baseline marks live in `baselines.json`, so rebuilding the index never drops them.

Durability rules, because a SIGKILL or a second process must never cost a run:
- every file write goes temp file → fsync → `os.replace` → fsync of the directory;
- every write takes `perftui.json.lock` (filelock) and re-reads the files it changes inside the
  lock, so two processes never overwrite each other's runs or marks;
- a run's document is written before its summary, so a summary never points at nothing; an
  orphan document (killed between the two) is picked up again when the index is rebuilt;
- an unreadable, truncated or future-schema catalog or shard is never overwritten: it is moved
  aside to `<name>.corrupt-<stamp>`, a one-line warning says where, and the index is rebuilt from
  the run documents. The catalog is written last by a rebuild and removed first, so a present
  catalog means complete shards, and a rebuild cut short is redone on the next open;
- a single-file index of schema 1 (all summaries and the baselines in `perftui.json`) is split
  into shards and `baselines.json` when first opened; an index of schema 2 (or 1) is rebuilt
  once from the run documents, so every summary's fingerprint is `perftui.like.settings_key`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from perftui.engine.schema import (
    RECORD_SCHEMA,
    IndexRow,
    JsonObject,
    RunRecord,
    readable_record,
)
from perftui.history.files import (
    LATEST_NAME,
    atomic_write_bytes,
    atomic_write_json,
    fsync_dir,
    read_json,
)
from perftui.like import NOT_STARTED, run_status, settings_key

# The index's version (the catalog's "schema"), apart from each record's own (RECORD_SCHEMA).
# 1: one index file holding every summary and the baselines; 2: summaries whose fingerprint
# covered view-only settings (`perftui.like`), so a TUI run never matched a CLI run.
INDEX_SCHEMA = 3
DB_NAME = "perftui.json"
SHARD_GLOB = "perftui-*.json"
BASELINES_NAME = "baselines.json"
DOCS_DIR = "runs"
LOCK_TIMEOUT_S = 30.0

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")
_CATALOG = {"meta": {"1": {"schema": INDEX_SCHEMA}}}
Signature = tuple[int, int, int]


class StoreError(Exception):
    """A history problem the user can act on; the message is one line."""


class RunNotFound(StoreError):
    """No stored run matches the reference."""


class AmbiguousRun(StoreError):
    """A run id prefix matches more than one run."""


class CorruptDatabase(StoreError):
    """The index file cannot be used as it is (unreadable, wrong shape or newer schema)."""


def parse_utc(text: str | None) -> datetime | None:
    """Parse the ISO 8601 or compact (`20261123T103456Z`) stamps both runners write, as UTC."""
    if not text:
        return None
    text = text.strip()
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def iso_utc(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(data: Any) -> str:
    """A stable hash of JSON-able data, used to recognise the same run imported twice."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def compact(value: Any) -> Any:
    """Floats to 6 significant digits: far below measurement noise, a third off the document."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def encode_doc(record: RunRecord) -> bytes:
    """A run document as stored: compact JSON, gzipped (JSON aggregates shrink about 5×)."""
    return gzip.compress(json.dumps(record, separators=(",", ":")).encode(), 6, mtime=0)


class AtomicJSONStorage(Storage):
    """TinyDB storage that never rewrites in place; one parsed snapshot per TinyDB instance.

    The store opens a fresh TinyDB for each operation (inside the lock for writes), so the
    snapshot cache cannot go stale and TinyDB's several reads per operation parse the file once.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)
        self._data: dict[str, JsonObject] | None = None

    def read(self) -> dict[str, JsonObject] | None:
        if self._data is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if not raw.strip():
                raise CorruptDatabase("the file is empty")
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CorruptDatabase(f"invalid JSON ({exc.msg} at byte {exc.pos})") from None
            except UnicodeDecodeError as exc:  # json.loads guesses UTF-16/32 from NUL bytes
                raise CorruptDatabase(f"invalid JSON ({exc.reason} at byte {exc.start})") from None
            if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
                raise CorruptDatabase("not a TinyDB document")
            self._data = data
        return self._data

    def write(self, data: dict[str, JsonObject]) -> None:
        atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":")).encode())
        self._data = data


def record_started(record: RunRecord) -> str | None:
    """The run's start as `YYYY-MM-DDTHH:MM:SSZ` (legacy files only have `timestamp_utc`)."""
    stamp = parse_utc(record.get("started_at")) or parse_utc(record.get("timestamp_utc"))
    return iso_utc(stamp) if stamp else None


def summarize(record: RunRecord, doc_name: str, digest: str) -> IndexRow:
    """The index entry: everything list/filter/resolve need, nothing they do not."""
    failed = sorted(
        {
            f"{res.get('profile')}:{res.get('phase')}"
            for run in record.get("raw_runs") or []
            for res in run.get("results") or []
            if res.get("pass") is False
        }
    )
    return {
        "run_id": record["run_id"],
        "started_at": record_started(record),
        "finished_at": record.get("finished_at"),
        "target": record.get("target"),
        "device": record.get("device"),
        "settings_fingerprint": settings_key(record),
        "profiles": list(record.get("profiles") or []),
        "runs_per_profile": record.get("runs_per_profile"),
        "tag": record.get("tag") or "",
        "build": record.get("build") or "",
        "flagged": record.get("flagged") or "",
        "note": record.get("note") or "",
        "status": run_status(record),
        "overall_pass": record.get("overall_pass"),
        "failed_keys": failed,
        "hard_stop_reason": record.get("hard_stop_reason"),
        "keys": sorted((record.get("aggregated") or {}).keys()),
        "source": record.get("source") or "perftui",
        "kind": run_kind(record),
        "content_hash": digest,
        "doc": doc_name,
    }


def run_kind(record: RunRecord) -> str:
    """ "capacity" for a capacity search (`perftui capacity`), else "run": a search's steps at
    chosen rates are not the previous run of a suite, nor the other way round."""
    return "capacity" if record.get("capacity") else "run"


def _sort_key(summary: IndexRow) -> tuple[str, str]:
    return (summary.get("started_at") or "", summary["run_id"])


class _Rebuilt(Exception):
    """The index was rebuilt while being read: read it again."""


def shard_name(started_at: str | None) -> str:
    """The index file a run's summary lives in: the month it started (runs rarely move)."""
    return f"perftui-{started_at[:7]}.json" if started_at else "perftui-undated.json"


def doc_name(run_id: str) -> str:
    return _SAFE_ID.sub("_", run_id) + ".json.gz"


def _signature(path: Path) -> Signature | None:
    """(inode, mtime, size): every write replaces the file, so unchanged means unchanged."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _to_stderr(message: str) -> None:
    print(f"perftui: warning: {message}", file=sys.stderr)


class HistoryStore:
    """All access to stored runs; safe to use from several processes at once."""

    def __init__(
        self, history_dir: Path | str, on_warning: Callable[[str], None] | None = None
    ) -> None:
        """`on_warning` hears about a damaged database moved aside (default: stderr); the engine
        turns it into a log event, so it never draws over a TUI."""
        self.dir = Path(history_dir)
        self.on_warning = on_warning or _to_stderr
        self.db_path = self.dir / DB_NAME
        self.baselines_path = self.dir / BASELINES_NAME
        self.docs_dir = self.dir / DOCS_DIR
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self._catalog_ok: Signature | None = None  # the catalog's signature when last checked
        # Each shard's parsed summaries, keyed by its path, with the signature they came from.
        self._cached: dict[Path, tuple[Signature, list[IndexRow]]] = {}

    # ----- low level -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with self.lock:
                yield
        except Timeout:
            raise StoreError(
                f"history database is locked by another process ({self.lock.lock_file}); try again"
            ) from None

    def _ensure_index(self, create: bool = False) -> None:
        """A checked catalog with complete shards: migrated, rebuilt or repaired as needed.

        Cheap when the catalog has not changed since the last check (one stat).
        """
        signature = _signature(self.db_path)
        if signature is not None and signature == self._catalog_ok:
            return
        try:
            version = self._catalog_version()
        except CorruptDatabase as exc:
            with self._locked():
                try:
                    version = self._catalog_version()  # another process may have repaired it
                except CorruptDatabase:
                    self._quarantine(self.db_path, str(exc))
                    version = INDEX_SCHEMA
        if version is None:
            has_docs = self.docs_dir.is_dir() and any(self.docs_dir.iterdir())
            if has_docs or create:
                with self._locked():
                    if self._catalog_version() is None:
                        self._rebuild()
        elif version < INDEX_SCHEMA:
            with self._locked():
                version = self._catalog_version()
                if version == 1:
                    self._split_v1()
                if version is not None and version < INDEX_SCHEMA:
                    self._rebuild()  # every summary's fingerprint recomputed from its document
        self._catalog_ok = _signature(self.db_path)

    def _catalog_version(self) -> int | None:
        """The catalog's schema, None if there is none; CorruptDatabase if it cannot be used."""
        data = AtomicJSONStorage(str(self.db_path)).read()
        if data is None:
            return None
        meta = list(data.get("meta", {}).values())
        version = meta[0].get("schema") if meta else None
        if not isinstance(version, int) or version < 1:
            raise CorruptDatabase("no schema version")
        if version > INDEX_SCHEMA:
            raise CorruptDatabase(
                f"written by a newer perftui (schema {version}, this one reads {INDEX_SCHEMA})"
            )
        return version

    def _split_v1(self) -> None:
        """Schema 1 → 2, inside the lock: summaries to month shards, marks to baselines.json.

        The catalog is rewritten last: cut short, the split is simply done again.
        """
        data = AtomicJSONStorage(str(self.db_path)).read() or {}
        marks = {
            d["name"]: {"run_id": d["run_id"], "set_at": d.get("set_at")}
            for d in data.get("baselines", {}).values()
            if isinstance(d, dict) and "name" in d and "run_id" in d
        }
        if marks:
            atomic_write_json(self.baselines_path, {**marks, **self._read_baselines()})
        self._write_shards(list(data.get("runs", {}).values()))
        atomic_write_json(self.db_path, _CATALOG)

    def _write_shards(self, summaries: list[IndexRow]) -> None:
        groups: dict[str, list[IndexRow]] = {}
        for s in sorted(summaries, key=_sort_key):
            groups.setdefault(shard_name(s.get("started_at")), []).append(s)
        for name, group in groups.items():
            data = {"runs": {str(i): s for i, s in enumerate(group, start=1)}}
            AtomicJSONStorage(str(self.dir / name)).write(data)

    def _quarantine(self, path: Path, reason: str) -> None:
        """Move a damaged index file aside (never overwrite it) and rebuild; inside the lock."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(path, target)
        fsync_dir(self.dir)
        count = self._rebuild()
        self.on_warning(
            f"history database {path} is unusable ({reason}); "
            f"moved it to {target} and rebuilt the index from {count} run file(s)"
        )

    def _rebuild(self) -> int:
        """Index every readable run document (orphans and all); call with the lock held.

        Baseline marks are in their own file and stay as they are.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.db_path)  # no catalog until every shard is written again
        summaries = []
        for path in sorted(self.docs_dir.glob("*.json.gz")) if self.docs_dir.is_dir() else []:
            try:
                record = json.loads(gzip.decompress(path.read_bytes()))
            except (OSError, ValueError, EOFError):
                continue
            schema = record.get("schema", 1) if isinstance(record, dict) else None
            if not readable_record(schema):
                continue
            record.setdefault("run_id", path.name.removesuffix(".json.gz"))
            digest = record.get("content_hash") or content_hash(record)
            summaries.append(summarize(record, path.name, digest))
        for old in self.dir.glob(SHARD_GLOB):
            old.unlink()
        self._write_shards(summaries)
        atomic_write_json(self.db_path, _CATALOG)
        self._cached.clear()
        return len(summaries)

    def _shard(self, path: Path) -> TinyDB:
        """Inside the lock: a shard to change; a damaged one is moved aside and rebuilt first."""
        db = TinyDB(str(path), storage=AtomicJSONStorage)
        try:
            db.storage.read()
        except CorruptDatabase as exc:
            self._quarantine(path, str(exc))
            db = TinyDB(str(path), storage=AtomicJSONStorage)
        return db

    def _shard_summaries(self, path: Path) -> list[IndexRow]:
        """One shard's summaries (copies), parsed once while the file stays the same."""
        before = _signature(path)
        cached = self._cached.get(path)
        if before is not None and cached is not None and cached[0] == before:
            return [dict(s) for s in cached[1]]  # callers may change what they get
        try:
            data = AtomicJSONStorage(str(path)).read() or {}
        except CorruptDatabase as exc:
            with self._locked():
                try:
                    data = AtomicJSONStorage(str(path)).read() or {}
                except CorruptDatabase:
                    self._quarantine(path, str(exc))
                    raise _Rebuilt from None
        summaries = list(data.get("runs", {}).values())
        if before is not None and _signature(path) == before:  # changed while read: no cache
            self._cached[path] = (before, summaries)
            return [dict(s) for s in summaries]
        return summaries

    def _summaries(self) -> list[IndexRow]:
        """Every summary; the caller's own copies."""
        if not self.db_path.exists() and not self.docs_dir.is_dir():
            return []
        for _ in range(3):
            self._ensure_index()
            catalog = _signature(self.db_path)
            try:
                shards = sorted(self.dir.glob(SHARD_GLOB))
                found = [self._shard_summaries(path) for path in shards]
            except _Rebuilt:
                continue
            if _signature(self.db_path) != catalog:  # another process rebuilt it meanwhile
                continue
            for gone in self._cached.keys() - set(shards):
                del self._cached[gone]
            return [s for group in found for s in group]
        raise StoreError(f"history index in {self.dir} keeps changing; try again")

    def _read_doc(self, summary: IndexRow) -> RunRecord:
        path = self.docs_dir / summary["doc"]
        try:
            return json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError, EOFError) as exc:
            raise StoreError(f"run {summary['run_id']}: cannot read {path}: {exc}") from None

    def _read_baselines(self) -> dict[str, dict[str, str]]:
        """name → {run_id, set_at}; a damaged file is moved aside with a warning (never kept)."""
        try:
            raw = self.baselines_path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("run_id"), str) for v in data.values()
            ):
                raise ValueError("not a name → run map")
        except (ValueError, UnicodeDecodeError) as exc:
            with self._locked():
                if self.baselines_path.read_bytes() != raw:
                    return self._read_baselines()  # another process wrote it meanwhile
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                target = self.baselines_path.with_name(f"{BASELINES_NAME}.corrupt-{stamp}")
                os.replace(self.baselines_path, target)
                fsync_dir(self.dir)
                self.on_warning(
                    f"baseline marks {self.baselines_path} are unusable ({exc}); "
                    f"moved them to {target}; set the baselines again"
                )
            return {}
        return data

    # ----- writes ----------------------------------------------------------------------------

    def add_run(self, record: RunRecord, digest: str | None = None) -> str:
        """Store a run (finished or stopped) and return its id; the same content twice is a no-op.

        `digest` lets the legacy importer dedupe on the original file's content. The same
        content has the same start, so only the run's own month is searched for it.
        """
        record = compact(dict(record))
        record.setdefault("schema", RECORD_SCHEMA)
        digest = digest or record.get("content_hash") or content_hash(record)
        started = record_started(record)
        base_id = record.get("run_id") or (
            (started or "unknown").replace("-", "").replace(":", "") + "-" + digest[:6]
        )
        with self._locked():
            self._ensure_index(create=True)
            shard = self._shard(self.dir / shard_name(started))
            existing = shard.table("runs").all()
            for doc in existing:
                if doc.get("content_hash") == digest:
                    return doc["run_id"]
            taken = {doc["run_id"] for doc in existing}
            run_id, n = base_id, 1
            while not self._id_free(run_id, taken, digest):  # never replace another run
                run_id, n = f"{base_id}-{n}", n + 1
            record["run_id"] = run_id
            record["content_hash"] = digest
            self.docs_dir.mkdir(exist_ok=True)
            name = doc_name(run_id)
            atomic_write_bytes(self.docs_dir / name, encode_doc(record))
            shard.table("runs").insert(summarize(record, name, digest))
        return run_id

    def _id_free(self, run_id: str, taken: set[str], digest: str) -> bool:
        """Free in this month and on disk: a document of another month (or another id that
        maps to the same file name) is never replaced; an orphan of this very run may be."""
        if run_id in taken:
            return False
        path = self.docs_dir / doc_name(run_id)
        if not path.exists():
            return True
        try:
            return json.loads(gzip.decompress(path.read_bytes())).get("content_hash") == digest
        except (OSError, ValueError, EOFError, AttributeError):
            return False

    def _locate(self, run_id: str) -> tuple[IndexRow, TinyDB]:
        """Inside the lock: a run's summary and the shard that holds it."""
        self._ensure_index()
        summary = self._summary(self._summaries(), run_id)
        return summary, self._shard(self.dir / shard_name(summary.get("started_at")))

    def set_note(self, run_id: str, note: str) -> None:
        self._set_field(run_id, "note", note)

    def _set_field(self, run_id: str, key: str, value: str) -> None:
        """One field of a stored run, in its record and its index row."""
        with self._locked():
            summary, shard = self._locate(run_id)
            record = self._read_doc(summary)
            record[key] = value
            atomic_write_bytes(self.docs_dir / summary["doc"], encode_doc(record))
            shard.table("runs").update({key: value}, Query().run_id == run_id)

    def set_baseline(self, run_id: str, name: str = "default") -> None:
        with self._locked():
            if self._summary(self._summaries(), run_id).get("status") == NOT_STARTED:
                raise StoreError(
                    f"run {run_id} never reached its first phase (nothing was measured); "
                    "it cannot be a baseline"
                )
            marks = self._read_baselines()
            marks[name] = {"run_id": run_id, "set_at": iso_utc(datetime.now(UTC))}
            atomic_write_json(self.baselines_path, marks)

    def delete(self, run_id: str) -> list[str]:
        """Remove a run; returns the names of the baselines that pointed at it (now gone too)."""
        with self._locked():
            summary, shard = self._locate(run_id)
            shard.table("runs").remove(Query().run_id == run_id)
            marks = self._read_baselines()
            names = [name for name, mark in marks.items() if mark["run_id"] == run_id]
            if names:
                atomic_write_json(
                    self.baselines_path, {k: v for k, v in marks.items() if k not in names}
                )
            with contextlib.suppress(FileNotFoundError):
                (self.docs_dir / summary["doc"]).unlink()
            self._delete_legacy_files(summary)
        return names

    def _delete_legacy_files(self, gone: IndexRow) -> None:
        """Inside the lock: the deleted run's `perf_<stamp>*.json/.md`, and `latest.json` if it
        is that run, which then holds the newest run left (the next run's "previous"), or goes."""
        run_id = gone["run_id"]
        started = parse_utc(gone.get("started_at"))
        if started is not None:
            for path in self.dir.glob(f"perf_{started.strftime('%Y%m%dT%H%M%SZ')}*.json"):
                if (read_json(path) or {}).get("run_id") == run_id:
                    path.with_suffix(".md").unlink(missing_ok=True)
                    path.unlink(missing_ok=True)
        latest = self.dir / LATEST_NAME
        if (read_json(latest) or {}).get("run_id") != run_id:
            return
        left = [s for s in self._summaries() if s.get("kind", "run") == "run"]
        left = [s for s in left if s.get("status") != NOT_STARTED and s["run_id"] != run_id]
        if left:
            atomic_write_json(latest, self._read_doc(max(left, key=_sort_key)))
        else:
            latest.unlink(missing_ok=True)

    # ----- reads -----------------------------------------------------------------------------

    @staticmethod
    def _summary(summaries: list[IndexRow], run_id: str) -> IndexRow:
        for summary in summaries:
            if summary["run_id"] == run_id:
                return dict(summary)
        raise RunNotFound(f"no stored run with id {run_id!r}")

    def get(self, run_id: str) -> RunRecord:
        return self._read_doc(self._summary(self._summaries(), run_id))

    def baselines(self) -> dict[str, str]:
        if self.db_path.exists():
            self._ensure_index()  # a schema-1 index still holds its marks: split it first
        return {name: mark["run_id"] for name, mark in self._read_baselines().items()}

    def list_runs(
        self,
        target: str | None = None,
        profile: str | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        passed: bool | None = None,
        status: str | None = None,
        limit: int | None = None,
        build: str | None = None,
    ) -> list[IndexRow]:
        """Run summaries, newest first, filtered on what the index holds; `target` is the
        device's host:port or its name ("sim" for the simulated device, whatever its port)."""
        since_s = iso_utc(since) if since else None
        until_s = iso_utc(until) if until else None
        out = []
        for s in self._summaries():
            started = s.get("started_at") or ""
            if (
                (target and target not in (s.get("target"), s.get("device")))
                or (profile and profile not in s.get("profiles", []))
                or (tag is not None and s.get("tag") != tag)
                or (build is not None and (s.get("build") or "") != build)
                or (since_s and started < since_s)
                or (until_s and started > until_s)
                or (passed is not None and bool(s.get("overall_pass")) != passed)
                or (status and s.get("status") != status)
            ):
                continue
            out.append(s)
        out.sort(key=_sort_key, reverse=True)
        return out[:limit] if limit else out

    def _comparable(self, record: RunRecord) -> list[IndexRow]:
        """Summaries of the runs made like `record`, newest first: the same device (its stable
        identity, else its target), the same profiles, the same kind (run or capacity search) and
        the same settings fingerprint. A run without a fingerprint (made before settings were
        kept) matches only such runs; a run that never reached its first phase matches none."""
        device = record.get("device")
        kind = run_kind(record)
        profiles = sorted(record.get("profiles") or [])
        fingerprint = settings_key(record)
        return [
            s
            for s in self.list_runs(target=None if device else record.get("target"))
            if (not device or s.get("device") == device)
            and sorted(s.get("profiles", [])) == profiles
            and s.get("kind", "run") == kind
            and s.get("settings_fingerprint") == fingerprint
            and s.get("status") != NOT_STARTED
        ]

    def previous_of(self, record: RunRecord) -> RunRecord | None:
        """The newest comparable run (`_comparable`) before `record`."""
        key = (record_started(record) or "", record.get("run_id") or "")
        for s in self._comparable(record):
            if _sort_key(s) < key:
                return self._read_doc(s)
        return None

    def noise_candidates(self, a: RunRecord, b: RunRecord) -> list[IndexRow]:
        """Summaries of the finished runs comparable with B (`_comparable`), other than A and
        B, newest first: what a noise sample may be picked from (`perftui.verdicts`); none when
        A and B were set up differently (no history then fits both)."""
        if settings_key(a) != settings_key(b):
            return []
        skip = {a.get("run_id"), b.get("run_id")}
        return [
            s
            for s in self._comparable(b)
            if s["run_id"] not in skip and (s.get("status") or "finished") == "finished"
        ]

    def set_flag(self, run_id: str, text: str) -> None:
        """Mark a run that a stored comparison called a regression: it never joins a noise
        sample."""
        self._set_field(run_id, "flagged", text)

    def resolve(self, ref: str, relative_to: RunRecord | None = None) -> RunRecord:
        """A run from a reference: id, unique id prefix, tag (newest with it), `latest`,
        `previous`, `baseline`, `baseline:NAME` or `build:LABEL` (the newest of that build).

        With `relative_to` (a run just made), `latest` means the newest other run and `previous`
        the run before it of the same target and profiles.
        """
        summaries = self._summaries()
        own = relative_to.get("run_id") if relative_to else None
        others = sorted((s for s in summaries if s["run_id"] != own), key=_sort_key)
        if ref == "latest":
            if not others:
                raise RunNotFound("no stored runs yet")
            return self._read_doc(others[-1])
        if ref == "previous":
            current = relative_to or (self._read_doc(others[-1]) if others else None)
            previous = self.previous_of(current) if current else None
            if previous is None:
                raise RunNotFound("no previous run of the same device, profiles and settings")
            return previous
        if ref.startswith("build:"):
            label = ref.partition(":")[2]
            built = [s for s in others if s.get("build") == label]
            if not built:
                raise RunNotFound(f"no stored run of build {label!r}")
            return self._read_doc(built[-1])
        if ref == "baseline" or ref.startswith("baseline:"):
            name = ref.partition(":")[2] or "default"
            run_id = self.baselines().get(name)
            if run_id is None:
                raise RunNotFound(
                    f"no baseline named {name!r}; set one with `perftui history baseline RUN`"
                )
            return self.get(run_id)
        for s in summaries:
            if s["run_id"] == ref:
                return self._read_doc(s)
        tagged = [s for s in others if s.get("tag") == ref]
        if tagged:
            return self._read_doc(tagged[-1])
        matches = [s for s in summaries if s["run_id"].startswith(ref)]
        if len(matches) == 1:
            return self._read_doc(matches[0])
        if matches:
            shown = ", ".join(s["run_id"] for s in matches[:3])
            raise AmbiguousRun(f"{ref!r} matches {len(matches)} runs ({shown}, …); give more")
        hint = f"; did you mean baseline:{ref}?" if ref in self.baselines() else ""
        raise RunNotFound(f"no stored run, tag or baseline matches {ref!r}{hint}")

    def records(self, summaries: list[IndexRow]) -> Iterator[RunRecord]:
        """Full records for some summaries (for exports and trends), skipping unreadable ones."""
        for s in summaries:
            with contextlib.suppress(StoreError):
                yield self._read_doc(s)
