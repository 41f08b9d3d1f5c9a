"""The store (`coalmine store`): the one process that writes ClickHouse, consuming topics into
tables, and that answers queries over its private socket in embedded mode."""
