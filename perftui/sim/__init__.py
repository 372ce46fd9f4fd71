"""The simulated ESP32 device; the engine never knows it.

aiohttp is imported in `device` (the server, in a thread or its own process) and only there;
`model` is what the device serves and what it costs, and `options` holds `SimOptions` and the
flags of `perftui sim`, both without it, so the command line can declare them without loading the
server.
"""
