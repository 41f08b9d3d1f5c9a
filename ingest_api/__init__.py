"""The HTTP API: ingest, admin and query routes (FastAPI). Business logic lives elsewhere."""
