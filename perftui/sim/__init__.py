"""The simulated ESP32 device; aiohttp is imported here and only here. The engine never knows it."""
