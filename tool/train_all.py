"""The whole recipe for one data set in one command: rgb_only, pose_only, the merge, rgb+pose,
then the tests of every stage; run again, it picks up where it stopped.

    python tool/train_all.py --output_dir output/kinetics50 [--config configs/paper/kinetics50.toml]
        [--<field> value ...] [--<stage>.<field> value ...] [--test_datasets Kinetics,Mimetics]
        [--fusion_dir NAME] [--restart [STAGES]] [--nproc_per_node N] [--dry_run] [--quiet]

Each stage writes into its own folder under `--output_dir`: `rgb_only/`, `pose_only/` and the
fusion folder (`rgb_pose/`, or `--fusion_dir NAME`, so that two fusion recipes can share the
single-stream stages). Every step is the project's own command: `main/train.py`, the merge tool,
`main/test.py`, called through their `main(argv)` in this process, or under
`torch.distributed.run` with `--nproc_per_node N` (the merge always runs here).

- `--<field> value` (any config field of `main/config.py`, also `--field=value`) goes to every
  train and test call; `--rgb_only.<field> value`, `--pose_only.<field> value` and
  `--rgb+pose.<field> value` only to that stage's. A later option wins, and a stage's own come
  after the shared ones.
- `--config FILE` (repeatable) reads a recipe file (main/config_file.py; the files of
  `configs/`): its shared tables are options for every stage, its `[stage.<mode>.<group>]`
  tables that stage's own. The files come first; the command line's options override them.
- Resuming: a stage whose folder holds snapshots of that stage is called with `--continue`
  (train.py resumes its most recent run, or finds nothing left to do); the merge is redone only
  when the fusion folder has no merged snapshot or one older than a stage it was made from
  (rgb+pose then starts over from the new one); a test is rerun only when its
  `result/<dataset>_metrics.json` is missing, is of another stage or epoch, or is older than the
  snapshot it tested. `--restart` (all stages) or `--restart pose_only,rgb+pose` starts those
  stages over, replacing their snapshots; what depends on them is redone too.
- The last epoch of a stage is its `end_epoch - 1` (`--rgb+pose.end_epoch` counts the merged
  snapshot as epoch 0, as train.py does).
- `--dry_run` prints the commands it would run, one per line, with the steps as `#` comments: the
  output is a shell script.

At the end it prints top-1/top-5 per stage and test set, and writes them with each stage's
train and test summaries to `<output_dir>/train_all_summary.json`. See docs/train_all.md.

The steps live in tool/recipe/: the options (options.py), the plan of the stages (plan.py), what
their folders hold (disk_state.py), running a step (runner.py), the steps in order (steps.py)
and the summary file (summary.py).
"""

import argparse
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence

from common.errors import UsageError, exit_on_error
from common.stages import MODES
from main.cli import OneLineParser
from tool.recipe.plan import DEFAULT_FUSION_DIR, plan_stages, restart_set
from tool.recipe.runner import Runner
from tool.recipe.steps import run_recipe
from tool.recipe.summary import SUMMARY_FILE, format_table


def make_parser() -> argparse.ArgumentParser:
    """The driver's own options; every other `--<field>` / `--<stage>.<field>` is forwarded."""

    parser = OneLineParser(
        prog="train_all.py",
        usage="%(prog)s --output_dir DIR [--config FILE] [--<field> VALUE ...] "
              "[--<stage>.<field> VALUE ...] [options]",
        description=__doc__.split("\n\n")[0],
        epilog="Config fields: see `python main/train.py --help`. Stages: "
               + ", ".join(MODES) + ". Examples: docs/train_all.md.",
        allow_abbrev=False)  # `--out` or `--rest` must not silently mean a driver option
    parser.add_argument("--output_dir", required=True, metavar="DIR",
                        help="folder of the stages' folders and train_all_summary.json")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="a recipe file (TOML, see configs/); may be repeated, a later file "
                             "wins; the command line's options override the files'")
    parser.add_argument("--test_datasets", default=None, metavar="SETS",
                        help="comma-separated data sets to test every stage on, or none "
                             "(default: Kinetics -> Kinetics,Mimetics; NTU -> NTU)")
    parser.add_argument("--fusion_dir", default=DEFAULT_FUSION_DIR, metavar="NAME",
                        help=f"the rgb+pose stage's folder (default: {DEFAULT_FUSION_DIR})")
    parser.add_argument("--restart", nargs="?", const="all", default=None, metavar="STAGES",
                        help="start stages over, replacing their snapshots: all (the bare "
                             "option) or a comma list of " + ", ".join(MODES))
    parser.add_argument("--nproc_per_node", type=int, default=1, metavar="N",
                        help="run each train/test call under torch.distributed.run with N "
                             "processes (default 1: in this process)")
    parser.add_argument("--dry_run", action="store_true",
                        help="print the commands, run nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="drop train.py/test.py's console output (their logs keep it)")
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = make_parser()
    args, forwarded = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    tests = None
    if args.test_datasets is not None:
        tests = [] if args.test_datasets.lower() == "none" else \
            [d for d in args.test_datasets.split(",") if d]
    try:
        # Everything that can be wrong with the command line is found before anything runs.
        plan_stages(args.output_dir, forwarded, config_files=args.config, test_datasets=tests,
                    fusion_dir=args.fusion_dir)
        restart_set(args.restart)
        Runner(args.nproc_per_node)
    except UsageError as err:
        parser.error(str(err))
    result = run_recipe(args.output_dir, forwarded, config_files=args.config, test_datasets=tests,
                        fusion_dir=args.fusion_dir, restart=args.restart or False,
                        quiet=args.quiet, nproc_per_node=args.nproc_per_node,
                        dry_run=args.dry_run)
    if not args.dry_run:
        print()
        print(format_table(result["stages"]))
        print(f"\nsummary: {osp.join(args.output_dir, SUMMARY_FILE)}")
    return result


if __name__ == "__main__":
    main()
