"""`python tool/compare_quickstart.py`: the quickstart of a baseline commit against this checkout,
back to back on this machine. The method, the options and the definition of seed noise are in
tool/benchmarks/quickstart_compare.py."""
from tool.benchmarks.quickstart_compare import main

if __name__ == "__main__":
    main()
