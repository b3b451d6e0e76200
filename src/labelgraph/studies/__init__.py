"""Studies: the demo (the method comparison on synthetic scenes), the weights comparison, and sweeps."""
