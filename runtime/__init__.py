"""The shared runtime below the API and the processors: settings, the Kafka and ClickHouse
clients, logging, retry, metrics, the key and control registries, the query backend, and the
log generations."""

__version__ = "0.1.0"
