"""The simulated ESP32 device; the engine never knows it.

aiohttp is imported in `device` and only there; `options` holds `SimOptions` and the flags of
`perftui sim` without it, so the command line can declare them without loading the server.
"""
