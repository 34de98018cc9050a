"""The web entrypoint: the HTTP API, the order event WebSocket, notify callbacks and pages."""
