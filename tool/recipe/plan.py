"""The plan of a recipe: each stage's folder, options and resolved config, before anything runs.

`plan_stages` reads every option (recipe files, then the command line), checks it as train.py
and test.py would, and returns one `StagePlan` per stage in the order the stages run.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from easydict import EasyDict

from common.errors import UsageError
from common.stages import MODES, RGB_POSE, STAGES, Stage
from common.train.checkpoint import snapshot_path
from main.config import DATASETS, build_config
from tool.recipe.options import as_argv, by_stage, check_train_argv, file_options, read_overrides

# The fusion stage's folder unless --fusion_dir says otherwise (the stage's file-name form).
DEFAULT_FUSION_DIR = RGB_POSE.slug
# What each training data set is tested on when --test_datasets is not given: a Kinetics model
# in context and out of context (Mimetics, in Kinetics' label space, same subset).
DEFAULT_TEST_DATASETS: Mapping[str, Tuple[str, ...]] = {
    "Kinetics": ("Kinetics", "Mimetics"), "NTU": ("NTU",)}


@dataclass
class StagePlan:
    """One stage of the recipe: its folder, the options it gets and its resolved config.

    Attributes:
        stage: the stage (common/stages.py).
        folder: its output folder (`--output_dir` of its train and test calls).
        options: (field, value text) forwarded to its calls: the shared ones, then its own.
        cfg: its resolved training config (`build_config`), for end_epoch and the folders.
        test_datasets: the data sets its last epoch is tested on.
    """

    stage: Stage
    folder: str
    options: Tuple[Tuple[str, str], ...]
    cfg: EasyDict
    test_datasets: Tuple[str, ...]

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def first_epoch(self) -> int:
        """The first epoch a fresh run trains (rgb+pose: the merged snapshot is epoch 0)."""
        return 1 if self.stage.starts_from_merge else 0

    @property
    def last_epoch(self) -> int:
        return self.cfg.end_epoch - 1

    def snapshot(self, epoch: Optional[int] = None) -> str:
        return snapshot_path(self.cfg.model_dir, self.last_epoch if epoch is None else epoch)

    def merge_target(self) -> str:
        """Where rgb+pose starts from: what train.py reads when it starts the stage afresh."""
        return self.cfg.init_snapshot or snapshot_path(self.cfg.model_dir, 0)

    def train_argv(self, flags: Sequence[str] = ()) -> List[str]:
        return ["--mode", self.name, "--output_dir", self.folder, *flags,
                *as_argv(self.options)]

    def test_argv(self, dataset: str) -> List[str]:
        # The test set replaces the training set; the rest is what the stage was trained with
        # (the snapshot decides the network; repeating its values is allowed).
        options = [(k, v) for k, v in self.options if k != "dataset"]
        return ["--mode", self.name, "--output_dir", self.folder, "--test_epoch",
                str(self.last_epoch), *as_argv(options), "--dataset", dataset]

    def metrics_path(self, dataset: str) -> str:
        return osp.join(self.cfg.result_dir, f"{dataset.lower()}_metrics.json")


def _stage_folder(stage: Stage, fusion_dir: str) -> str:
    return fusion_dir if stage.starts_from_merge else stage.slug


def _check_layout(stage_overrides: Mapping[str, Sequence[str]], fusion_dir: str,
                  test_datasets: Optional[Sequence[str]]) -> None:
    """The stage names, the fusion folder and the test sets, before any option is read."""
    unknown = sorted(set(stage_overrides) - set(STAGES))
    if unknown:
        raise UsageError(f"unknown stage(s) {', '.join(map(repr, unknown))} in the per-stage "
                         f"options; the stages are {', '.join(MODES)}")
    if not fusion_dir or osp.basename(fusion_dir) != fusion_dir or fusion_dir in (".", ".."):
        raise UsageError(f"--fusion_dir must be a folder name, got {fusion_dir!r}")
    if fusion_dir in {_stage_folder(s, "") for s in STAGES.values() if not s.starts_from_merge}:
        raise UsageError(f"--fusion_dir {fusion_dir} is a single-stream stage's folder")
    for dataset in test_datasets or ():
        if dataset not in DATASETS:
            raise UsageError(f"--test_datasets: unknown data set {dataset!r}; the data sets are "
                             f"{', '.join(DATASETS)}")


def stage_options(overrides: Sequence[str] = (),
                  stage_overrides: Optional[Mapping[str, Sequence[str]]] = None, *,
                  config_files: Sequence[str] = ()) -> Dict[str, Tuple[Tuple[str, str], ...]]:
    """Each stage's options (field, value text), by precedence, lowest first: the files'
    shared fields, the files' fields of that stage, the command line's shared options, the
    command line's options of that stage (a later one replaces an earlier one).

    Args:
        overrides, stage_overrides, config_files: as in `plan_stages`.

    Raises:
        UsageError: an unknown field or stage, a field the driver sets itself, or a value
            train.py would refuse among the shared ones.
    """
    command_line = read_overrides(overrides)
    for stage_name, tokens in (stage_overrides or {}).items():
        command_line += read_overrides(tokens, stage_name)
    file_shared, file_own = by_stage(file_options(config_files))
    shared, own = by_stage(command_line)
    # The shared options alone first, so that a bad value there is not blamed on a stage.
    check_train_argv(["--mode", MODES[0], *as_argv({**file_shared, **shared}.items())], "")
    return {name: tuple({**file_shared, **file_own[name], **shared, **own[name]}.items())
            for name in STAGES}


def _plan_stage(stage: Stage, folder: str, options: Tuple[Tuple[str, str], ...],
                test_datasets: Optional[Sequence[str]]) -> StagePlan:
    """One stage's plan; its options are checked by train.py's and test.py's rules."""
    where = f"{stage.name}: "
    typed = check_train_argv(["--mode", stage.name, "--output_dir", folder, *as_argv(options)],
                             where)
    try:
        cfg = build_config(typed, entry="train")
    except UsageError as err:
        raise UsageError(f"{where}{err}") from None
    if cfg.end_epoch - 1 < (1 if stage.starts_from_merge else 0):
        raise UsageError(f"{where}--end_epoch {cfg.end_epoch} trains no epoch"
                         + (" (the merged snapshot is epoch 0: 2 or more)"
                            if stage.starts_from_merge else ""))
    if cfg.dataset == "Skeleton":  # its calls would test on the training --split
        raise UsageError(f"{where}--dataset Skeleton reads one --split per call, and the recipe "
                         "would test on the training split: run main/train.py and main/test.py "
                         "per stage, each with its own --split")
    tests = tuple(test_datasets) if test_datasets is not None else \
        DEFAULT_TEST_DATASETS.get(cfg.dataset, (cfg.dataset,))
    for dataset in tests:  # test.py's rules too (e.g. a data set it cannot read)
        try:
            build_config(dict(typed, dataset=dataset, test_epoch=cfg.end_epoch - 1),
                         entry="test")
        except UsageError as err:
            raise UsageError(f"{where}test on {dataset}: {err}") from None
    return StagePlan(stage, folder, options, cfg, tests)


def plan_stages(output_dir: str, overrides: Sequence[str] = (),
                stage_overrides: Optional[Mapping[str, Sequence[str]]] = None, *,
                config_files: Sequence[str] = (),
                test_datasets: Optional[Sequence[str]] = None,
                fusion_dir: str = DEFAULT_FUSION_DIR) -> Dict[str, StagePlan]:
    """Check every option and resolve each stage's config, before anything runs.

    Args:
        output_dir: the folder holding the stages' folders.
        overrides: options for every stage, as on the command line (`--lr 0.01`); may also hold
            `--<stage>.<field> value` options.
        stage_overrides: stage name -> its own options (`{'rgb+pose': ['--lr', '0.005']}`).
        config_files: recipe files (main/config_file.py), applied before the options.
        test_datasets: the data sets to test on; None: by the training set (Kinetics: Kinetics
            and Mimetics; NTU: NTU).
        fusion_dir: the fusion stage's folder name under `output_dir`.

    Returns:
        stage name -> `StagePlan`, in the order the stages run.

    Raises:
        UsageError: an unknown field, stage or data set, a value train.py would refuse, or a
            combination `build_config` refuses; the message names the option and the stage
            (and the file, for a recipe file's field).
    """
    _check_layout(stage_overrides or {}, fusion_dir, test_datasets)
    options = stage_options(overrides, stage_overrides, config_files=config_files)
    return {stage.name: _plan_stage(stage, osp.join(output_dir, _stage_folder(stage, fusion_dir)),
                                    options[stage.name], test_datasets)
            for stage in STAGES.values()}


def restart_set(restart: Union[bool, str, Iterable[str]]) -> Set[str]:
    """The stages to start over: True or 'all' -> every stage; False/None -> none; else the
    names given (a list, or one comma-separated string)."""
    if restart is True or restart == "all":
        return set(STAGES)
    if not restart:
        return set()
    names = restart.split(",") if isinstance(restart, str) else list(restart)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UsageError(f"--restart: unknown stage(s) {', '.join(map(repr, unknown))}; the "
                         f"stages are {', '.join(MODES)} (or all)")
    return set(names)
