"""Allow `python -m perftui`."""

from perftui.cli.main import main

if __name__ == "__main__":  # the engine's spawned child re-imports this module
    raise SystemExit(main())
