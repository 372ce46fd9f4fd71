"""Allow `python -m perftui`."""

from perftui.cli import main

raise SystemExit(main())
