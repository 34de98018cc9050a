"""Provider adapters: one module per channel, each the only importer of its channel's SDK."""
