"""The event log: SQLite schema, migrations and every read and write of it."""
