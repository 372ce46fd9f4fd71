"""The command palette's runs: type part of a run id or a tag (or target, date) and Enter opens
that run's Results.

The runs are listed once per palette opening, off the UI loop (a thread), through the app's
`list_runs`; the record is fetched the same way when one is chosen.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from perftui.engine.schema import IndexRow

SHOWN_WITHOUT_QUERY = 10  # the newest runs, offered before anything is typed


class RunSource(Protocol):
    """What the provider needs of the app."""

    def list_runs(self) -> list[IndexRow]: ...

    def open_run(self, run_id: str) -> None: ...


def run_text(summary: IndexRow) -> str:
    """How a run reads in the palette (and what the query is matched against)."""
    parts = [str(summary.get("run_id") or "")]
    parts += [f"#{summary['tag']}" if summary.get("tag") else "", str(summary.get("target") or "")]
    parts.append(str(summary.get("status") or ""))
    return "  ".join(p for p in parts if p)


class RunsProvider(Provider):
    """Stored runs, by id or tag."""

    async def startup(self) -> None:
        self._runs = await asyncio.to_thread(cast(RunSource, self.app).list_runs)

    def _open(self, run_id: str) -> None:
        cast(RunSource, self.app).open_run(run_id)

    async def discover(self) -> Hits:
        for summary in self._runs[:SHOWN_WITHOUT_QUERY]:
            text = run_text(summary)
            yield DiscoveryHit(
                text, partial(self._open, summary["run_id"]), help="open its Results"
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for summary in self._runs:
            text = run_text(summary)
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self._open, summary["run_id"]),
                    text=text,
                    help="open its Results",
                )
