"""Training: losses, regularizers, each architecture's update step and the loop that runs them."""
