"""What the numbers mean: aggregates, comparisons and verdicts, trends, reports.

Takes runs (plain dicts), never a store: it may import config and like only, and never history,
the engine, textual, rich, the simulator or aiohttp. scipy is imported here and only here.
"""
