"""Run history: a TinyDB index in `<history_dir>/perftui.json` plus one JSON document per run.

Why two layers: TinyDB parses its whole file on every read, and 5,000 full run records (tens of
KB each) would make `history list` and `compare` parse hundreds of MB. So the TinyDB database
holds only what listing, filtering and resolving need (a small summary per run, the baselines and
the schema version), and each full record lives in `runs/<run_id>.json.gz` (gzipped JSON, about
40 KB for 3 profiles × 3 runs × 2 phases with histograms).

Durability rules, because a SIGKILL or a second process must never cost a run:
- every file write goes temp file → fsync → `os.replace` → fsync of the directory;
- every write to the index takes `perftui.json.lock` (filelock) and re-reads the file inside the
  lock, so two processes never overwrite each other's runs;
- a run's document is written before its summary, so a summary never points at nothing; an
  orphan document (killed between the two) is picked up again when the index is rebuilt;
- an unreadable, truncated or future-schema index is never overwritten: it is moved aside to
  `perftui.json.corrupt-<stamp>`, a one-line warning says where, and the index is rebuilt from the
  run documents (only notes' index copies and baselines live in the index alone).
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

from perftui.history.files import atomic_write_bytes, fsync_dir

SCHEMA_VERSION = 1
DB_NAME = "perftui.json"
DOCS_DIR = "runs"
LOCK_TIMEOUT_S = 30.0

# Index migrations: MIGRATIONS[n] turns a schema-n index (all tables) into schema n + 1.
# Empty while only schema 1 exists; `_migrate` applies them in order when an older index opens.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


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


def encode_doc(record: dict[str, Any]) -> bytes:
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
        self._data: dict[str, dict[str, Any]] | None = None

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._data is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if not raw.strip():
                raise CorruptDatabase("the file is empty")
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CorruptDatabase(f"invalid JSON ({exc.msg} at byte {exc.pos})") from None
            if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
                raise CorruptDatabase("not a TinyDB document")
            self._data = data
        return self._data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":")).encode())
        self._data = data


def record_started(record: dict[str, Any]) -> str | None:
    """The run's start as `YYYY-MM-DDTHH:MM:SSZ` (legacy files only have `timestamp_utc`)."""
    stamp = parse_utc(record.get("started_at")) or parse_utc(record.get("timestamp_utc"))
    return iso_utc(stamp) if stamp else None


def summarize(record: dict[str, Any], doc_name: str, digest: str) -> dict[str, Any]:
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
        "profiles": list(record.get("profiles") or []),
        "runs_per_profile": record.get("runs_per_profile"),
        "tag": record.get("tag") or "",
        "note": record.get("note") or "",
        "status": record.get("status") or "finished",
        "overall_pass": record.get("overall_pass"),
        "failed_keys": failed,
        "hard_stop_reason": record.get("hard_stop_reason"),
        "keys": sorted((record.get("aggregated") or {}).keys()),
        "source": record.get("source") or "perftui",
        "kind": run_kind(record),
        "content_hash": digest,
        "doc": doc_name,
    }


def run_kind(record: dict[str, Any]) -> str:
    """"capacity" for a capacity search (`perftui capacity`), else "run": a search's steps at
    chosen rates are not the previous run of a suite, nor the other way round."""
    return "capacity" if record.get("capacity") else "run"


def _sort_key(summary: dict[str, Any]) -> tuple[str, str]:
    return (summary.get("started_at") or "", summary["run_id"])


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
        self.docs_dir = self.dir / DOCS_DIR
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=LOCK_TIMEOUT_S)
        # The parsed summaries and the (inode, mtime, size) of the index they came from: every
        # write replaces the file (new inode), so an unchanged stat means an unchanged index.
        self._cached: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None

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

    def _open(self) -> TinyDB:
        """A fresh, validated TinyDB snapshot; a bad index is quarantined (inside the lock)."""
        db = TinyDB(str(self.db_path), storage=AtomicJSONStorage)
        try:
            self._validate(db)
        except CorruptDatabase as exc:
            with self._locked():
                db = TinyDB(str(self.db_path), storage=AtomicJSONStorage)
                try:
                    self._validate(db)  # another process may have repaired it meanwhile
                except CorruptDatabase:
                    self._quarantine(str(exc))
                    db = TinyDB(str(self.db_path), storage=AtomicJSONStorage)
        if db.storage.read() is None and self.docs_dir.is_dir() and any(self.docs_dir.iterdir()):
            with self._locked():
                db = TinyDB(str(self.db_path), storage=AtomicJSONStorage)
                if db.storage.read() is None:
                    self._rebuild(db)
        return db

    def _validate(self, db: TinyDB) -> None:
        data = db.storage.read()
        if data is None:
            return
        meta = list(data.get("meta", {}).values())
        version = meta[0].get("schema") if meta else None
        if not isinstance(version, int):
            raise CorruptDatabase("no schema version")
        if version > SCHEMA_VERSION:
            raise CorruptDatabase(
                f"written by a newer perftui (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        if version < SCHEMA_VERSION:
            with self._locked():
                self._migrate(db, version)

    def _migrate(self, db: TinyDB, version: int) -> None:
        data = db.storage.read() or {}
        while version < SCHEMA_VERSION:
            data = MIGRATIONS[version](data)
            version += 1
        data["meta"] = {"1": {"schema": SCHEMA_VERSION}}
        db.storage.write(data)

    def _quarantine(self, reason: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.db_path.with_name(f"{DB_NAME}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.db_path.with_name(f"{DB_NAME}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.db_path, target)
        fsync_dir(self.dir)
        db = TinyDB(str(self.db_path), storage=AtomicJSONStorage)
        count = self._rebuild(db)
        message = (
            f"history database {self.db_path} is unusable ({reason}); "
            f"moved it to {target} and rebuilt the index from {count} run file(s)"
        )
        self.on_warning(message)

    def _rebuild(self, db: TinyDB) -> int:
        """Index every readable run document (orphans and all); call with the lock held."""
        summaries = []
        for path in sorted(self.docs_dir.glob("*.json.gz")) if self.docs_dir.is_dir() else []:
            try:
                record = json.loads(gzip.decompress(path.read_bytes()))
            except (OSError, ValueError, EOFError):
                continue
            schema = record.get("schema", 1) if isinstance(record, dict) else None
            if not isinstance(schema, int) or schema > SCHEMA_VERSION:
                continue
            record.setdefault("run_id", path.name.removesuffix(".json.gz"))
            digest = record.get("content_hash") or content_hash(record)
            summaries.append(summarize(record, path.name, digest))
        data = {
            "meta": {"1": {"schema": SCHEMA_VERSION}},
            "runs": {str(i): s for i, s in enumerate(summaries, start=1)},
            "baselines": {},
        }
        db.storage.write(data)
        return len(summaries)

    def _write_db(self) -> TinyDB:
        """Inside the lock: the current index, created with a schema stamp if new."""
        db = self._open()
        if db.storage.read() is None:
            db.storage.write({"meta": {"1": {"schema": SCHEMA_VERSION}}, "runs": {}})
        return db

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.db_path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _summaries(self) -> list[dict[str, Any]]:
        if not self.db_path.exists() and not self.docs_dir.is_dir():
            return []
        before = self._signature()
        if before is None or self._cached is None or self._cached[0] != before:
            summaries = [dict(doc) for doc in self._open().table("runs").all()]
            if before is None or self._signature() != before:  # changed while read: no cache
                return summaries
            self._cached = (before, summaries)
        return [dict(s) for s in self._cached[1]]

    def _read_doc(self, summary: dict[str, Any]) -> dict[str, Any]:
        path = self.docs_dir / summary["doc"]
        try:
            return json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError, EOFError) as exc:
            raise StoreError(f"run {summary['run_id']}: cannot read {path}: {exc}") from None

    # ----- writes ----------------------------------------------------------------------------

    def add_run(self, record: dict[str, Any], digest: str | None = None) -> str:
        """Store a run (finished or stopped) and return its id; the same content twice is a no-op.

        `digest` lets the legacy importer dedupe on the original file's content.
        """
        record = compact(dict(record))
        record.setdefault("schema", SCHEMA_VERSION)
        digest = digest or record.get("content_hash") or content_hash(record)
        base_id = record.get("run_id") or (
            (record_started(record) or "unknown").replace("-", "").replace(":", "")
            + "-"
            + digest[:6]
        )
        with self._locked():
            db = self._write_db()
            runs = db.table("runs")
            existing = runs.all()
            for doc in existing:
                if doc.get("content_hash") == digest:
                    return doc["run_id"]
            taken = {doc["run_id"] for doc in existing}
            run_id, n = base_id, 1
            while run_id in taken:  # never replace another run that happens to share the id
                run_id, n = f"{base_id}-{n}", n + 1
            record["run_id"] = run_id
            record["content_hash"] = digest
            self.docs_dir.mkdir(exist_ok=True)
            doc_name = _SAFE_ID.sub("_", run_id) + ".json.gz"
            atomic_write_bytes(self.docs_dir / doc_name, encode_doc(record))
            runs.insert(summarize(record, doc_name, digest))
        return run_id

    def set_note(self, run_id: str, note: str) -> None:
        with self._locked():
            runs = self._write_db().table("runs")
            summary = self._summary(runs.all(), run_id)
            record = self._read_doc(summary)
            record["note"] = note
            atomic_write_bytes(self.docs_dir / summary["doc"], encode_doc(record))
            runs.update({"note": note}, Query().run_id == run_id)

    def set_baseline(self, run_id: str, name: str = "default") -> None:
        with self._locked():
            db = self._write_db()
            self._summary(db.table("runs").all(), run_id)
            now = iso_utc(datetime.now(UTC))
            db.table("baselines").upsert(
                {"name": name, "run_id": run_id, "set_at": now}, Query().name == name
            )

    def delete(self, run_id: str) -> list[str]:
        """Remove a run; returns the names of the baselines that pointed at it (now gone too)."""
        with self._locked():
            db = self._write_db()
            summary = self._summary(db.table("runs").all(), run_id)
            db.table("runs").remove(Query().run_id == run_id)
            baselines = db.table("baselines")
            names = [d["name"] for d in baselines.all() if d["run_id"] == run_id]
            baselines.remove(Query().run_id == run_id)
            with contextlib.suppress(FileNotFoundError):
                (self.docs_dir / summary["doc"]).unlink()
        return names

    # ----- reads -----------------------------------------------------------------------------

    @staticmethod
    def _summary(summaries: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
        for summary in summaries:
            if summary["run_id"] == run_id:
                return dict(summary)
        raise RunNotFound(f"no stored run with id {run_id!r}")

    def get(self, run_id: str) -> dict[str, Any]:
        return self._read_doc(self._summary(self._summaries(), run_id))

    def baselines(self) -> dict[str, str]:
        if not self.db_path.exists():
            return {}
        return {d["name"]: d["run_id"] for d in self._open().table("baselines").all()}

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
    ) -> list[dict[str, Any]]:
        """Run summaries, newest first, filtered on what the index holds."""
        since_s = iso_utc(since) if since else None
        until_s = iso_utc(until) if until else None
        out = []
        for s in self._summaries():
            started = s.get("started_at") or ""
            if (
                (target and s.get("target") != target)
                or (profile and profile not in s.get("profiles", []))
                or (tag is not None and s.get("tag") != tag)
                or (since_s and started < since_s)
                or (until_s and started > until_s)
                or (passed is not None and bool(s.get("overall_pass")) != passed)
                or (status and s.get("status") != status)
            ):
                continue
            out.append(s)
        out.sort(key=_sort_key, reverse=True)
        return out[:limit] if limit else out

    def previous_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The newest run before `record` with the same target, profiles and kind."""
        started = record_started(record) or ""
        profiles = sorted(record.get("profiles") or [])
        key = (started, record.get("run_id") or "")
        kind = run_kind(record)
        for s in self.list_runs(target=record.get("target")):
            same = sorted(s.get("profiles", [])) == profiles and s.get("kind", "run") == kind
            if same and _sort_key(s) < key:
                return self._read_doc(s)
        return None

    def resolve(self, ref: str, relative_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """A run from a reference: id, unique id prefix, tag (newest with it), `latest`,
        `previous`, `baseline` or `baseline:NAME`.

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
                raise RunNotFound("no previous run of the same target and profiles")
            return previous
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
        raise RunNotFound(f"no stored run, tag or baseline matches {ref!r}")

    def records(self, summaries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Full records for some summaries (for exports and trends), skipping unreadable ones."""
        for s in summaries:
            with contextlib.suppress(StoreError):
                yield self._read_doc(s)
