"""The pure domain: token buckets, the canary state machine and its schedules, the rollup fold,
routing rules, digest plans, alert and notification texts, row mapping. No I/O: every function
takes an explicit `now`, and the API and the processors both import it."""
