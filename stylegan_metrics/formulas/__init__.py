"""Pure metric math on arrays: Fréchet distance, path-length helpers, linear separability and its SVMs."""
