"""Benchmarks and profiles of the feature store: run from a checkout, never installed or shipped in the image."""
