"""Grafana provisioning for the grafana-clickhouse-datasource plugin: the panels' SQL (once),
and the builder that writes the dashboard JSON Grafana reads (`python -m dashboards.build`)."""
