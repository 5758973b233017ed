"""The engine: containers from images (sangja.engine.container), later networks, volumes."""
