"""Adapters: the implementations of the ports (storage, locks, cache, feed, providers, clocks)."""
