"""Owning a run: its checks, the run lock, the simulated device, the engine (attached here or in
a detached host), the record of a run that died, and the release (see `owner`)."""


class CouldNotRun(RuntimeError):
    """The run cannot start (lock held, history dir unwritable, host unknown): one line, exit 3.

    Here, not in `owner`, so that the command line can catch it without loading the run
    machinery (the lock's filelock, the engine's lifecycle) for `--version` or `history list`."""
