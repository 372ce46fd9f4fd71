"""Stored runs: the TinyDB index and run files, legacy import, atomic files.

May import config and analysis; never the engine, textual, rich, the simulator or aiohttp.
"""
