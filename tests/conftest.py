"""Shared pytest fixtures; each section belongs to the module it serves."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from perftui.sim.device import SimOptions, SimProcess, SimServer

# --- simulated device (perftui.sim.device) ---------------------------------------------------

SIM_LIFETIME_S = 120.0  # a sim a test forgets to stop still goes away by itself


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimServer]]:
    """Start simulated devices with chosen options, e.g. `make_sim(workers=2, error_rate=0.1)`.

    Each runs on a free loopback port on its own thread and is stopped at teardown.
    """
    with contextlib.ExitStack() as stack:

        def make(**options: Any) -> SimServer:
            options.setdefault("max_lifetime_s", SIM_LIFETIME_S)
            return stack.enter_context(SimServer(SimOptions(**options), port=0))

        yield make


@pytest.fixture
def sim(make_sim: Callable[..., SimServer]) -> SimServer:
    """A well-behaved simulated device: `sim.base_url`, `sim.stats`."""
    return make_sim()


# --- the engine's tests (perftui run) -----------------------------------------------------------


@pytest.fixture(scope="session")
def device() -> Iterator[SimProcess]:
    """One well-behaved simulated device in its own process, shared by the engine's tests.

    A device on a thread of the test process shares its GIL, which shows up as latency spikes
    on a loaded 2-core machine; in its own process it behaves like the real thing.
    """
    with SimProcess(SimOptions(max_lifetime_s=900), port=0) as proc:
        yield proc
