"""Push-feed adapters."""
