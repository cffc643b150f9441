"""Benchmarks (not tests): throughput, memory and scaling, each runnable as `python -m bench.<name>`."""
