"""Event-delivery adapters: outbox events carried to other services."""
