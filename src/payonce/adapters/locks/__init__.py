"""Lock adapters: in-process per-order locks, and a no-op lock proving the database decides."""
