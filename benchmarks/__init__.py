"""labelgraph's benchmarks: ratios against a reference, measured side by side (``python -m benchmarks``)."""
