"""The reference implementations the benchmarks time the product against (never imported by
the product)."""
