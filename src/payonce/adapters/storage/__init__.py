"""Storage adapters: SQL (SQLite, PostgreSQL) through SQLAlchemy Core, and the in-memory twin."""
