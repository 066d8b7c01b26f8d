"""The main job against an older revision: `python tool/quickstart.py` of a baseline commit and
of this checkout, back to back on this machine; the speed-up and the two results tables.

    python tool/compare_quickstart.py                     # against 198198d, seed 0 (~30 min)
    python tool/compare_quickstart.py --seeds 3           # with the seed-noise check
    python tool/compare_quickstart.py --order ours_first  # the other order (cache effects)
    python tool/compare_quickstart.py --fast              # both smoke runs (a minute or two)

The baseline's tree is exported with `git archive` into a temporary folder (removed afterwards),
so the repository must be a clone with that commit. Run it on an otherwise idle machine: the
speed-up is a ratio of two wall times taken one after the other. The comparison itself (its
method, the definition of seed noise) is tool/benchmarks/quickstart_compare.py; this is its
command line.

Prints a table and writes every figure, with the machine, both revisions and the command, to
`<output_dir>/result/quickstart_compare.json`; each side's output and log go to
`<output_dir>/quickstart_compare/`.
"""

import argparse
import os.path as osp
from typing import Any, Dict, Optional, Sequence

from common.errors import exit_on_error
from tool.benchmarks.quickstart_compare import ORDERS, run


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline_rev", default="198198d",
                        help="the git revision to compare with (default: 198198d)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per side (0, 1, ...)")
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of both sides")
    parser.add_argument("--output_dir", default=osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), "output"))
    parser.add_argument("--fast", action="store_true",
                        help="both quickstarts with --fast: a smoke run, not a measurement")
    parser.add_argument("--order", choices=tuple(ORDERS), default="baseline_first",
                        help="which side runs first (default: baseline_first)")
    args = parser.parse_args(argv)
    return run(baseline_rev=args.baseline_rev, seeds=args.seeds, first_seed=args.first_seed,
               workers=args.workers, output_dir=args.output_dir, fast=args.fast,
               order=args.order)


if __name__ == "__main__":
    main()
