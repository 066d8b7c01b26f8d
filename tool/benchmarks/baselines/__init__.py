"""The plain implementations the benchmark cases measure the product against."""
