"""Every shape that crosses a boundary: wire formats, log records, topics, migrations."""
