"""Delivery of payment events to an external order service over signed webhooks."""
