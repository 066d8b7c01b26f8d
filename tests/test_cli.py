"""main/train.py and main/test.py as a user meets them: `--help` lists every config field, and
a bad command line ends in one line on stderr, a non-zero exit and no traceback, before any data
is read (the data folder of these runs is empty, so a message about the data would show)."""
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, NamedTuple

import pytest

from main.config import FIELDS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Case(NamedTuple):
    entry: str  # 'train' or 'test'
    args: List[str]  # after the valid base command line (a later option wins)
    words: List[str]  # each must be in the one error line
    writes_nothing: bool = True  # fails before any folder is made


GPU_FORMS = ["'0', '0,1', '0-3' or 'cpu'"]
CASES: Dict[str, Case] = {
    "train-unknown-mode": Case("train", ["--mode", "foo"], ["--mode", "'foo'", "rgb_only"]),
    "train-unknown-dataset": Case("train", ["--dataset", "Foo"], ["--dataset", "'Foo'", "NTU"]),
    "train-unknown-field": Case("train", ["--end_epoc", "2"],
                                ["--end_epoc", "did you mean --end_epoch"]),
    "train-class_num-abc": Case("train", ["--class_num", "abc"], ["--class_num", "'abc'"]),
    "train-seed-float": Case("train", ["--seed", "1.5"], ["--seed", "'1.5'", "integer"]),
    "train-lr-word": Case("train", ["--lr=fast"], ["--lr", "'fast'", "number"]),
    "train-video_shape-letters": Case("train", ["--video_shape", "a,b"],
                                      ["--video_shape", "'a,b'"]),
    "train-bool-word": Case("train", ["--train_aug", "maybe"],
                            ["--train_aug", "'maybe'", "true or false"]),
    "train-shape-empty-item": Case("train", ["--input_img_shape", "96,,96"],
                                   ["--input_img_shape", "'96,,96'"]),
    "train-gpu-abc": Case("train", ["--gpu", "abc"], ["--gpu", "'abc'", *GPU_FORMS]),
    "train-gpu-open-range": Case("train", ["--gpu", "0-"], ["--gpu", "'0-'", *GPU_FORMS]),
    "train-gpu-reversed": Case("train", ["--gpu", "3-1"], ["--gpu", "'3-1'", "ends before"]),
    "train-gpu-negative": Case("train", ["--gpu", "-1"], ["--gpu", "'-1'", *GPU_FORMS]),
    "train-gpu-empty-item": Case("train", ["--gpu", "0,,1"], ["--gpu", "'0,,1'", *GPU_FORMS]),
    "train-mimetics": Case("train", ["--dataset", "Mimetics"],
                           ["Mimetics", "test-only", "--dataset Kinetics", "test.py"]),
    "train-frame-factor": Case("train", ["--pose_frame_factor", "3"],
                               ["--pose_frame_factor 3", "--frame_interval 8"]),
    "train-gpu-not-there": Case("train", ["--gpu", "999"], ["--gpu 999", "not available"],
                                writes_nothing=False),
    "test-no-epoch": Case("test", [], ["--test_epoch", "required"]),
    "test-epoch-abc": Case("test", ["--test_epoch", "abc"], ["--test_epoch", "'abc'"]),
    "test-unknown-mode": Case("test", ["--mode", "foo"], ["--mode", "'foo'"]),
    "test-unknown-dataset": Case("test", ["--dataset", "Foo"], ["--dataset", "'Foo'"]),
    "test-gpu-not-there": Case("test", ["--gpu", "999"], ["--gpu 999", "not available"],
                               writes_nothing=False),
}


def run_entry(entry: str, args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, osp.join(ROOT, "main", f"{entry}.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Dict[str, Any]:
    """Every case and both `--help`s, run side by side (each start imports torch)."""
    empty_data = tmp_path_factory.mktemp("no_data")
    jobs = {}
    for name, case in CASES.items():
        out = tmp_path_factory.mktemp(name) / "out"
        base = ["--mode", "rgb_only", "--data_dir", str(empty_data), "--output_dir", str(out)]
        if case.entry == "test" and name != "test-no-epoch":
            base += ["--test_epoch", "0"]
        jobs[name] = (case.entry, base + case.args, out)
    jobs["help-train"] = ("train", ["--help"], None)
    jobs["help-test"] = ("test", ["--help"], None)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = {name: pool.submit(run_entry, entry, args)
                   for name, (entry, args, _) in jobs.items()}
        procs = {name: future.result() for name, future in futures.items()}
    assert not os.listdir(empty_data)
    return {"procs": procs, "outs": {name: out for name, (_, _, out) in jobs.items()},
            "data_dir": str(empty_data)}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_command_line_is_one_line(runs, name):
    case, proc = CASES[name], runs["procs"][name]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for word in case.words:
        assert word in lines[0], (word, lines[0])
    # About the argument, not the (empty) data set; and before any work.
    assert runs["data_dir"] not in lines[0]
    if case.writes_nothing:
        assert not runs["outs"][name].exists()


def _shown(value: Any) -> str:
    """A default as --help writes it (the command-line form)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@pytest.mark.parametrize("entry", ["train", "test"])
def test_help_lists_every_field_with_default_and_meaning(runs, entry):
    proc = runs["procs"][f"help-{entry}"]
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    # argparse wraps lines (at spaces and hyphens): compare without any whitespace.
    text = "".join(proc.stdout.split())
    required = {"mode", "test_epoch"} if entry == "test" else {"mode"}
    for field in FIELDS:
        shown = "required" if field.name in required else f"default: {_shown(field.default)}"
        assert f"--{field.name}" in text, field.name
        assert "".join(f"{field.help} ({shown})".split()) in text, field.name
    for group in ("network:", "input:", "data:", "training:", "testing:", "runtime:", "paths:"):
        assert group in text
    assert "--gpu,--gpu_ids" in text and "--continue,--continue_train" in text


@pytest.mark.parametrize("entry", ["train", "test"])
def test_unusable_data_set_is_one_line_naming_the_file(tmp_path, entry):
    """A data set that cannot be used at all: one line naming the file, exit 1, no traceback."""
    from tests.fixtures_data import write_kinetics

    write_kinetics(str(tmp_path), num_classes=2, videos_per_class=1, frame_num=12,
                   frame_size=(24, 32), subset="Tiny")
    annotation = tmp_path / "Kinetics" / "data" / ("KineticsTiny_train.json" if entry == "train"
                                                    else "KineticsTiny_val.json")
    annotation.write_text('{"images": [')  # truncated
    args = ["--mode", "pose_only", "--data_dir", str(tmp_path), "--output_dir",
            str(tmp_path / "out"), "--subset", "Tiny", "--pretrained", "none", "--num_thread", "0"]
    if entry == "test":
        from common.train.checkpoint import save_snapshot, snapshot_path
        from common.model import IntegralAction
        from data.joint_sets import OPENPOSE_18

        model = IntegralAction("pose_only", 2, OPENPOSE_18.limbs, 18)
        save_snapshot(snapshot_path(str(tmp_path / "out" / "model_dump"), 0), model, None, 0,
                      "pose_only")
        args += ["--test_epoch", "0"]
    proc = run_entry(entry, args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {annotation}"), proc.stderr
