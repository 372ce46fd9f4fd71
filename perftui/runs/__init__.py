"""Owning a run: its checks, the run lock, the simulated device, the engine (attached here or in
a detached host), the record of a run that died, and the release (see `owner`)."""
