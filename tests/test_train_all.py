"""tool/train_all.py: the whole recipe in one call, and run again, only what is missing.

One recipe is trained once for the module (the quickstart's `--fast` data and recipe file,
configs/quickstart_fast.toml, one iteration per epoch): rgb_only 1 epoch, pose_only 2 epochs, rgb+pose 1 epoch after the merged
snapshot_0. The tests after it look at what that run left and run the driver again on it.
"""
import json
import os
import shutil
import os.path as osp
import shlex
import subprocess
import sys

import pytest
import torch

from common.errors import UsageError
from main.cli import parse_command_line
from tool import quickstart, train_all
from tool.recipe.plan import plan_stages
from tool.recipe.runner import StageError
from tool.make_synthetic_dataset import generate_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FOLDERS = {"rgb_only": "rgb_only", "pose_only": "pose_only", "rgb+pose": "rgb_pose"}
LAST_EPOCH = {"rgb_only": 0, "pose_only": 1, "rgb+pose": 1}
TESTS = ("Kinetics", "Mimetics")  # the default for a Kinetics-format training set
FILES = [quickstart.recipe_file(fast=True)]
CONFIG = ["--config", FILES[0]]  # the same file on train_all.py's command line


def dump(out, stage, epoch):
    return osp.join(out, FOLDERS[stage], "model_dump", f"snapshot_{epoch}.pth.tar")


def metrics(out, stage, dataset):
    return osp.join(out, FOLDERS[stage], "result", f"{dataset.lower()}_metrics.json")


def mtimes(out):
    """mtime of every snapshot and metrics file under `out`."""
    found = {}
    for folder, _, files in os.walk(out):
        for name in files:
            if name.endswith((".pth.tar", "_metrics.json")):
                path = osp.join(folder, name)
                found[osp.relpath(path, out)] = os.stat(path).st_mtime_ns
    return found


def log_count(out, stage, text):
    log = osp.join(out, FOLDERS[stage], "log", f"train_{FOLDERS[stage]}.txt")
    return open(log).read().count(text)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_all")
    data = str(root / "data")
    # The quickstart's --fast data set and recipe file; one iteration per epoch (the command
    # line's options override the file's, its stage tables included).
    generate_dataset(data, seed=0, num_classes=4, train_per_class=3, test_per_class=2,
                     valid_per_class=2, frames=16, height=40, width=52)
    options = quickstart.run_options(data, seed=0, workers=0) + [
        "--max_iters_per_epoch", "1", "--progress_bar", "false", "--end_epoch", "1",
        "--pose_only.end_epoch", "2", "--rgb+pose.end_epoch", "2", "--rgb+pose.lr", "0.003"]
    out = str(root / "out")
    result = train_all.run_recipe(out, options, config_files=FILES, quiet=True)
    return out, options, result


def test_full_run_trains_merges_and_tests_every_stage(recipe):
    out, _, result = recipe
    stages = result["stages"]
    assert list(stages) == ["rgb_only", "pose_only", "rgb+pose"]
    for stage, last in LAST_EPOCH.items():
        first = 1 if stage == "rgb+pose" else 0
        assert stages[stage]["train"]["action"] == "fresh"
        assert stages[stage]["train"]["epochs"] == [first, last]
        for epoch in range(last + 1):
            snap = torch.load(dump(out, stage, epoch), weights_only=True, mmap=True)
            assert snap["mode"] == stage and snap["epoch"] == epoch
            assert bool(snap.get("merged")) == (stage == "rgb+pose" and epoch == 0)
        assert stages[stage]["tests_run"] == list(TESTS)
        for dataset in TESTS:
            saved = json.load(open(metrics(out, stage, dataset)))
            assert (saved["mode"], saved["dataset"], saved["epoch"]) == (stage, dataset, last)
            assert stages[stage]["tests"][dataset] == saved  # test.py's own summary
    merge = stages["rgb+pose"]["merge"]
    assert merge["merged"] and merge["path"] == dump(out, "rgb+pose", 0)
    assert f"--pose {dump(out, 'pose_only', 1)}" in merge["command"]
    summary = json.load(open(osp.join(out, "train_all_summary.json")))
    assert list(summary["stages"]) == list(FOLDERS.values())
    assert summary["stages"]["rgb_pose"]["tests"]["Mimetics"]["top1"] == \
        stages["rgb+pose"]["tests"]["Mimetics"]["top1"]


def test_stage_options_reach_only_their_stage(recipe):
    out, _, _ = recipe
    config = {stage: torch.load(dump(out, stage, last), weights_only=True, mmap=True)["config"]
              for stage, last in LAST_EPOCH.items()}
    assert config["rgb+pose"]["lr"] == 0.003 and config["rgb+pose"]["end_epoch"] == 2
    assert config["rgb_only"]["lr"] == 0.005 and config["pose_only"]["lr"] == 0.005  # defaults
    assert config["rgb_only"]["end_epoch"] == 1 and config["pose_only"]["end_epoch"] == 2
    for stage in LAST_EPOCH:  # the shared options reach every stage
        assert config[stage]["max_iters_per_epoch"] == 1 and config[stage]["subset"] == "Synth"


def test_dry_run_prints_the_commands_and_runs_nothing(recipe, tmp_path, capsys):
    out, options, _ = recipe
    fresh = str(tmp_path / "fresh")
    train_all.main(["--output_dir", fresh, *CONFIG, *options, "--dry_run"])
    printed = capsys.readouterr().out.splitlines()
    commands = [shlex.split(line) for line in printed if not line.startswith("#")]
    assert [osp.basename(c[1]) for c in commands] == [
        "train.py", "train.py", "merge_rgb_only_pose_only.py", "train.py", *["test.py"] * 6]
    assert all(c[0] == "python" for c in commands)
    assert not osp.exists(fresh)
    # Each command line is one train.py itself accepts.
    fusion = parse_command_line("train", commands[3][2:])
    assert fusion["mode"] == "rgb+pose" and fusion["lr"] == 0.003 and fusion["end_epoch"] == 2
    assert "overwrite" not in fusion and "continue_train" not in fusion

    # On the finished recipe, --restart pose_only redoes pose_only, the merge, rgb+pose and the
    # tests of those two; rgb_only is only asked to continue (nothing to do) and not retested.
    before = mtimes(out)
    train_all.main(["--output_dir", out, *CONFIG, *options, "--restart", "pose_only",
                    "--dry_run"])
    printed = capsys.readouterr().out.splitlines()
    commands = [shlex.split(line) for line in printed if not line.startswith("#")]
    modes = [(osp.basename(c[1]), c[c.index("--mode") + 1] if "--mode" in c else None)
             for c in commands]
    assert modes == [("train.py", "rgb_only"), ("train.py", "pose_only"),
                     ("merge_rgb_only_pose_only.py", None), ("train.py", "rgb+pose"),
                     *[("test.py", "pose_only")] * 2, *[("test.py", "rgb+pose")] * 2]
    assert "--continue" in commands[0] and "--overwrite" not in commands[0]
    assert "--overwrite" in commands[1] and "--continue" not in commands[1]
    assert "--overwrite" in commands[3]  # rgb+pose's snapshot_1 came from the old merge
    assert "# [train_all] rgb_only: done already (epoch 0)" in printed
    assert mtimes(out) == before


def test_rerun_resumes_only_what_is_missing(recipe, capsys):
    out, options, _ = recipe

    # (b) Run again: no stage trains (train.py is asked to continue and finds nothing left to
    # do), the merge and every test are skipped, no snapshot or metrics file is touched.
    before = mtimes(out)
    nothing = {stage: log_count(out, stage, "nothing left to do") for stage in FOLDERS}
    result = train_all.main(["--output_dir", out, *CONFIG, *options, "--quiet"])
    printed = capsys.readouterr().out
    stages = result["stages"]
    for stage in FOLDERS:
        assert stages[stage]["train"]["action"] == "done" and not stages[stage]["train"]["trained"]
        assert stages[stage]["tests_run"] == [] and list(stages[stage]["tests"]) == list(TESTS)
        assert log_count(out, stage, "nothing left to do") == nothing[stage] + 1
    assert not stages["rgb+pose"]["merge"]["merged"]
    assert mtimes(out) == before
    assert "[train_all] merge: done already" in printed
    assert "test pose_only (epoch 1) on Mimetics: done already" in printed
    assert "rgb+pose   rgb_pose   1" in printed  # the table

    # (c) Lose pose_only's last snapshot: pose_only resumes its run from snapshot_0 and trains
    # epoch 1 only; what was made from it (the merge, rgb+pose, their tests) is redone;
    # rgb_only is not retrained nor retested.
    os.remove(dump(out, "pose_only", 1))
    first = torch.load(dump(out, "pose_only", 0), weights_only=True, mmap=True)
    result = train_all.run_recipe(out, options, config_files=FILES, quiet=True)
    stages = result["stages"]
    after = mtimes(out)
    assert stages["pose_only"]["train"]["action"] == "resume"
    assert stages["pose_only"]["train"]["epochs"] == [1, 1]
    assert log_count(out, "pose_only", f"resuming from {dump(out, 'pose_only', 0)} (epoch 0)") == 1
    redone = torch.load(dump(out, "pose_only", 1), weights_only=True, mmap=True)
    assert redone["run"]["id"] == first["run"]["id"]  # the same run, resumed
    unchanged = [k for k in before if before[k] == after[k]]
    assert sorted(unchanged) == sorted(
        [osp.join("rgb_only", "model_dump", "snapshot_0.pth.tar"),
         osp.join("pose_only", "model_dump", "snapshot_0.pth.tar")]
        + [osp.join("rgb_only", "result", f"{d.lower()}_metrics.json") for d in TESTS])
    assert stages["rgb_only"]["train"]["action"] == "done" and stages["rgb_only"]["tests_run"] == []
    merge = stages["rgb+pose"]["merge"]
    assert merge["merged"] and "pose_only" in merge["reason"]
    assert stages["rgb+pose"]["train"]["action"] == "fresh"
    assert "--overwrite" in stages["rgb+pose"]["train"]["command"]
    merged = torch.load(dump(out, "rgb+pose", 0), weights_only=True, mmap=True)
    fused = torch.load(dump(out, "rgb+pose", 1), weights_only=True, mmap=True)
    assert merged["saved_at"] > redone["saved_at"] and fused["saved_at"] > merged["saved_at"]
    assert stages["pose_only"]["tests_run"] == list(TESTS)
    assert stages["rgb+pose"]["tests_run"] == list(TESTS)


def test_bad_options_stop_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, osp.join(ROOT, "tool", "train_all.py"),
                           "--output_dir", str(out), "--no_such_field", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "error: unknown config field --no_such_field (see train_all.py --help)"]
    assert not out.exists()
    # The same checks through the Python API: a UsageError naming the option and the stage.
    for overrides, stage_overrides, words in (
            (["--pose_only.end_epoc", "2"], None, "did you mean --pose_only.end_epoch"),
            (["--fusion.lr", "1"], None, "'fusion' is not a stage"),
            (["--mode", "rgb_only"], None, "--mode"),
            (["--model_dir", "x"], None, "share one folder"),
            ([], {"rgb+pose": ["--lr", "abc"]}, "rgb+pose: argument --lr"),
            ([], {"rgb+pose": ["--end_epoch", "1"]}, "rgb+pose: --end_epoch 1 trains no epoch"),
            ([], {"rgb_pose": ["--lr", "1"]}, "unknown stage(s) 'rgb_pose'")):
        with pytest.raises(UsageError) as err:
            train_all.run_recipe(str(out), overrides, stage_overrides)
        assert words in str(err.value)
    assert not out.exists()


def test_a_failing_step_names_the_stage_and_the_command(recipe, tmp_path, capsys):
    _, options, _ = recipe
    with pytest.raises(StageError) as err:
        train_all.run_recipe(str(tmp_path / "out"), [*options, "--data_dir", str(tmp_path)],
                             config_files=FILES, quiet=True)
    message = str(err.value)
    assert message.startswith("rgb_only training failed (exit status 1): python ")
    assert "train.py --mode rgb_only" in message and "\n" not in message
    assert "error: " in capsys.readouterr().err  # train.py's own one line, naming the file


# ------------------------------------------------------------------------------ recipe files

# The quickstart's options before its recipes became files (configs/quickstart*.toml,
# configs/robust.toml), restated: the files must give train.py exactly these.
OLD_SHAPES = {
    "subset": "Synth", "pretrained": "none", "frame_per_seg": "4", "frame_interval": "4",
    "video_shape": "75", "input_img_shape": "64,64", "input_hm_shape": "24,24",
    "train_batch_size": "8", "test_batch_size": "16", "test_infer_num": "3",
    "lr_dec_epoch": "none", "log_interval": "0", "dropout": "0"}
OLD_FAST_SHAPES = dict(OLD_SHAPES, video_shape="40", input_img_shape="32,32",
                       input_hm_shape="8,8", train_batch_size="4", test_infer_num="2",
                       max_iters_per_epoch="2")
# The robust recipe (configs/robust.toml, chosen on the validation splits) adds these.
OLD_ROBUST = {"stream_agreement": "true", "agreement_scaling": "false", "pose_fallback": "0.4",
              "fusion_frozen_bn": "true"}
OLD_STAGES = {  # (fast, fusion folder) -> stage -> its own options
    (False, "fusion_paper"): {"rgb_only": {"end_epoch": "4", "lr": "0.01", "lr_dec_epoch": "3"},
                              "pose_only": {"end_epoch": "9", "lr": "0.03", "lr_dec_epoch": "7"},
                              "rgb+pose": {"end_epoch": "4", "lr": "0.005"}},
    (True, "fusion_paper"): {"rgb_only": {"end_epoch": "1"}, "pose_only": {"end_epoch": "1"},
                             "rgb+pose": {"end_epoch": "2"}},
}
OLD_STAGES[False, "fusion_robust"] = dict(OLD_STAGES[False, "fusion_paper"], **{
    "rgb+pose": dict(OLD_ROBUST, lr="0.005", end_epoch="4")})
OLD_STAGES[True, "fusion_robust"] = dict(OLD_STAGES[True, "fusion_paper"], **{
    "rgb+pose": dict(OLD_ROBUST, end_epoch="2")})


def _argv(options):
    return [token for name, value in options.items() for token in (f"--{name}", value)]


@pytest.mark.parametrize("fast", [False, True])
def test_quickstart_files_give_the_old_overrides(tmp_path, fast):
    fused = [r for r in quickstart.RECIPES if r.mode == "rgb+pose"]
    assert [r.slug for r in fused] == ["fusion_paper", "fusion_robust"]
    run = quickstart.run_options("DATA", seed=3, workers=2)
    for fusion in fused:
        plans = plan_stages(str(tmp_path), run, config_files=quickstart.config_files(fusion, fast),
                            fusion_dir=fusion.slug)
        for stage, plan in plans.items():
            old = {**(OLD_FAST_SHAPES if fast else OLD_SHAPES), "data_dir": "DATA", "seed": "3",
                   "num_thread": "2", **OLD_STAGES[fast, fusion.slug][stage]}
            expected = parse_command_line(
                "train", ["--mode", stage, "--output_dir", plan.folder, *_argv(old)])
            assert parse_command_line("train", plan.train_argv()) == expected, (stage, fusion)


def test_a_config_file_reaches_every_stage_and_the_command_line_wins(tmp_path, capsys):
    path = tmp_path / "recipe.toml"
    path.write_text('[training]\nend_epoch = 5\nlr = 0.1\n[stage."rgb+pose".training]\n'
                    'lr = 0.3\nend_epoch = 6\n[stage.pose_only.training]\nend_epoch = 7\n')
    plans = plan_stages(str(tmp_path), ["--end_epoch", "4", "--pose_only.end_epoch", "3"],
                        config_files=[str(path)])
    got = {stage: (plan.cfg.end_epoch, plan.cfg.lr) for stage, plan in plans.items()}
    # Files first (shared, then the stage's own), then the command line (shared, then own).
    assert got == {"rgb_only": (4, 0.1), "pose_only": (3, 0.1), "rgb+pose": (4, 0.3)}
    train_all.main(["--output_dir", str(tmp_path / "out"), "--config", str(path), "--dry_run"])
    printed = capsys.readouterr().out.splitlines()
    fusion = [shlex.split(line) for line in printed if "--mode rgb+pose" in line][0]
    assert parse_command_line("train", fusion[2:])["lr"] == 0.3
    assert parse_command_line("train", fusion[2:])["end_epoch"] == 6


@pytest.mark.parametrize("text, words", [
    ("[training]\nend_epoc = 2\n", ["end_epoc", "did you mean end_epoch"]),
    ("[training]\nend_epoch = \"two\"\n", ["end_epoch", "an integer"]),
    ("[network]\nmode = \"rgb_only\"\n", ["--mode", "every stage in its own mode"]),
    ("[stage.rgb_pose.training]\nlr = 1.0\n", ["rgb_pose", "not a stage"]),
])
def test_a_bad_config_file_stops_train_all_in_one_line(tmp_path, capsys, text, words):
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(UsageError) as err:
        train_all.run_recipe(str(out), [], config_files=[str(path)])
    assert str(err.value).startswith(f"{path}: ")
    for word in words:
        assert word in str(err.value)
    with pytest.raises(SystemExit) as stop:
        train_all.main(["--output_dir", str(out), "--config", str(path)])
    lines = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and str(path) in lines[0]
    assert not out.exists()


def test_an_earlier_test_by_another_rule_or_subset_is_not_reused(tmp_path):
    from types import SimpleNamespace
    from tool.recipe.disk_state import recorded_test
    snapshot, metrics = tmp_path / "snapshot_3.pth.tar", tmp_path / "mimetics_metrics.json"
    snapshot.write_bytes(b"weights")
    plan = SimpleNamespace(name="rgb+pose", last_epoch=3,
                           cfg=SimpleNamespace(subset="Synth", pose_fallback=0.2),
                           metrics_path=lambda dataset: str(metrics),
                           snapshot=lambda: str(snapshot))
    earlier = {"mode": "rgb+pose", "dataset": "Mimetics", "epoch": 3, "subset": "Synth",
               "pose_fallback": 0.2, "top1": 70.0}
    for change, reused in (({}, True), ({"pose_fallback": 0.0}, False),
                           ({"subset": "SynthValid"}, False)):
        metrics.write_text(json.dumps(dict(earlier, **change)))
        os.utime(metrics, (os.path.getmtime(snapshot) + 5,) * 2)
        assert (recorded_test(plan, "Mimetics") is not None) == reused, change


def test_a_stage_trained_by_another_recipe_is_not_kept(recipe, tmp_path):
    out, options, _ = recipe
    copy = str(tmp_path / "out")
    shutil.copytree(out, copy)
    before = mtimes(copy)
    # The rgb+pose snapshots were trained at lr 0.003; a rerun asking for 0.004 must not pass
    # them off as its own.
    with pytest.raises(UsageError) as err:
        train_all.run_recipe(copy, [*options, "--rgb+pose.lr", "0.004"], config_files=FILES,
                             quiet=True)
    message = str(err.value)
    assert "snapshot_1.pth.tar was trained with lr 0.003, the recipe asks for 0.004" in message
    assert "--restart rgb+pose" in message
    assert mtimes(copy) == before  # nothing ran
