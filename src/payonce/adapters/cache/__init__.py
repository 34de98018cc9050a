"""Result-cache adapters."""
