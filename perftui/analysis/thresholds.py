"""How far a change must go to be called a regression: per-metric thresholds and α.

No file is read here: the config file's `[thresholds]` table reaches `RegressionThresholds.updated`
through `perftui.config.load_thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perftui.analysis.metrics import ALL_METRICS

ALPHA = 0.05


class ConfigError(ValueError):
    """A bad threshold setting (file or flag); the message is one line."""


@dataclass
class RegressionThresholds:
    """Per-metric regression thresholds (percent; error rate in points) and α (1 − confidence)."""

    values: dict[str, float] = field(
        default_factory=lambda: {name: m.threshold for name, m in ALL_METRICS.items()}
    )
    alpha: float = ALPHA

    def updated(self, settings: dict[str, Any], source: str) -> RegressionThresholds:
        """A copy with `settings` ({metric: value, "alpha": value}) applied; checked."""
        values = dict(self.values)
        alpha = self.alpha
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{source}: threshold {name} must be a number ≥ 0")
            if name == "alpha":
                if not 0 < value < 1:
                    raise ConfigError(f"{source}: alpha must be between 0 and 1")
                alpha = float(value)
            elif name in ALL_METRICS:
                values[name] = float(value)
            else:
                known = ", ".join([*ALL_METRICS, "alpha"])
                raise ConfigError(f"{source}: unknown threshold {name!r} (known: {known})")
        return RegressionThresholds(values, alpha)
