"""Entrypoints: the HTTP/WebSocket app, the background loop and the command line."""
