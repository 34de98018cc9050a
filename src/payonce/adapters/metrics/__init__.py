"""Adapters behind the metrics port."""
