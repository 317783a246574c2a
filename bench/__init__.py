"""Benchmarks on the embedded stack (`make bench`); results go to bench/results/ and docs/benchmarks.md."""
