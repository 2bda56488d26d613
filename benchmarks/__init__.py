"""datablox benchmarks package."""
