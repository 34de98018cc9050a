"""The application layer: one function per command, written against the ports only."""
