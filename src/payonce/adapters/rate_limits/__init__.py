"""Adapters behind the rate-limit port."""
