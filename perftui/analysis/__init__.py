"""What the numbers mean: aggregates, comparisons and verdicts, trends, reports.

Takes runs (plain dicts), never a store, and reads no file: the faces fetch the runs and
`perftui.config` reads the thresholds. It may import `perftui.like`, the engine's record shapes
(`engine.schema`) and histogram decoder (`engine.hdr`); never history, textual, rich, the
simulator or aiohttp. scipy is imported here and only here, on use.
"""
