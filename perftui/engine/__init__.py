"""The engine: drives the load and measures it, in its own process.

Owns the load connection (http1), the clients (load), the histograms (metrics), the suite and
its guards, device telemetry, gates, the event stream and the run lock. May import config,
profiles, history (to store a run) and analysis (to aggregate it); never textual, rich, the
simulator or aiohttp.
"""
