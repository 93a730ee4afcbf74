"""The homeserver: aiohttp application, storage, and the composition root."""
