"""The chain of stores: the till's outbox publisher and metrics, and the central collector (MQTT to PostgreSQL)."""
