"""The domain: money, ids, orders, payment records and their one transition table each."""
