"""The metric engine: per-index sampling, chunked and sharded runs with resumable state, and the planner
that generates each sample once for every metric that looks at it."""
