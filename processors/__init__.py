"""Everything that consumes the log: the ClickHouse sinks and the Faust agents. Each one's pure
logic (row mapping, folds, state machines) lives in plain functions tested without I/O."""
