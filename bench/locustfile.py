"""Locust's fastest user class hammering the 1 KB file: the ceiling benchmark's Python peer.

Run by bench/ceiling.py with bench/.venv-locust/bin/locust; `wait_time = constant(0)` so each
user sends back to back like every other tool in the comparison.
"""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class OneKiloByte(FastHttpUser):
    wait_time = constant(0)

    @task
    def one_k(self) -> None:
        self.client.get("/1k.bin")
