"""Recipe files (`--config FILE`, main/config_file.py) and the files of configs/: every file
builds a valid config, the paper's files hold the original's settings, the command line
overrides a file, and a bad file is one line naming the file and the field."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from common.errors import UsageError
from common.stages import STAGES
from main.cli import parse_command_line
from main.config import build_config
from main.config_file import read_recipe, recipe_overrides

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs", "**", "*.toml"), recursive=True))
PAPER = osp.join(ROOT, "configs", "paper")
LAYOUT_NOTE = "Layout: each config field sits under the table of its group"


def write(tmp_path, text: str, name: str = "recipe.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_line_error(capsys, entry: str, argv) -> str:
    """The error line of a command line that `parse_command_line` refuses (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        parse_command_line(entry, argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_the_configs_folder_holds_the_recipes():
    names = {osp.relpath(p, osp.join(ROOT, "configs")) for p in CONFIGS}
    for dataset in ("kinetics50", "kinetics400", "ntu"):
        assert osp.join("paper", f"{dataset}.toml") in names
        for stage in ("rgb_only", "pose_only", "rgb_pose"):
            assert osp.join("paper", f"{dataset}_{stage}.toml") in names
    assert {"quickstart.toml", "quickstart_fast.toml", "robust.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_config_file_builds_a_valid_config(path):
    text = open(path).read()
    assert LAYOUT_NOTE in text  # each file says how it is laid out
    recipe = read_recipe(path)
    modes = [recipe.fields["mode"]] if "mode" in recipe.fields else list(STAGES)
    for mode in modes:
        overrides = dict(recipe_overrides([recipe], mode), mode=mode)
        cfg = build_config(overrides, entry="train")
        assert cfg.mode == mode
        build_config(dict(overrides, test_epoch=cfg.end_epoch - 1), entry="test")
        # The same through train.py's command line.
        argv = ["--config", path] + ([] if "mode" in recipe.fields else ["--mode", mode])
        assert parse_command_line("train", argv) == overrides


@pytest.mark.parametrize("dataset, fields", [
    ("kinetics50", {}), ("kinetics400", {"subset": "400"}), ("ntu", {"dataset": "NTU"})])
def test_paper_files_hold_the_originals_settings(dataset, fields):
    """A paper file gives the config the original's defaults and derived rules give."""
    for slug, mode in (("rgb_only", "rgb_only"), ("pose_only", "pose_only"),
                       ("rgb_pose", "rgb+pose")):
        expected = build_config(dict(fields, mode=mode), entry="train")
        per_stage = osp.join(PAPER, f"{dataset}_{slug}.toml")
        assert build_config(parse_command_line("train", ["--config", per_stage]),
                            entry="train") == expected
        whole = read_recipe(osp.join(PAPER, f"{dataset}.toml"))
        assert build_config(dict(recipe_overrides([whole], mode), mode=mode),
                            entry="train") == expected
    ntu = build_config(parse_command_line("train", ["--config",
                                                    osp.join(PAPER, "ntu_rgb_only.toml")]))
    assert ntu.video_shape == (240, 320)


def test_command_line_overrides_the_file_and_later_files_win(tmp_path):
    base = write(tmp_path, '[network]\nmode = "pose_only"\n[training]\nend_epoch = 5\n'
                           'lr = 0.1\nlr_dec_epoch = [2, 4]\n[input]\nvideo_shape = 128\n')
    got = parse_command_line("train", ["--config", base])
    assert got == {"mode": "pose_only", "end_epoch": 5, "lr": 0.1, "lr_dec_epoch": (2, 4),
                   "video_shape": (128,)}
    got = parse_command_line("train", ["--end_epoch", "7", "--config", base, "--mode",
                                       "rgb_only"])
    assert got["end_epoch"] == 7 and got["mode"] == "rgb_only" and got["lr"] == 0.1
    later = write(tmp_path, "[training]\nlr = 0.2\n", "later.toml")
    assert parse_command_line("train", ["--config", base, "--config", later])["lr"] == 0.2
    # test.py: the file may give test_epoch too; the command line still wins.
    epoch = write(tmp_path, '[network]\nmode = "rgb_only"\n[testing]\ntest_epoch = 3\n',
                  "epoch.toml")
    assert parse_command_line("test", ["--config", epoch])["test_epoch"] == 3
    assert parse_command_line("test", ["--config", epoch, "--test_epoch", "4"])["test_epoch"] == 4


def test_a_stage_table_applies_to_its_stage_only(tmp_path):
    path = write(tmp_path, '[training]\nlr = 0.1\n[stage."rgb+pose".training]\nlr = 0.3\n'
                           '[stage.rgb_only.training]\nend_epoch = 2\n')
    assert parse_command_line("train", ["--config", path, "--mode", "rgb+pose"]) == {
        "mode": "rgb+pose", "lr": 0.3}
    assert parse_command_line("train", ["--config", path, "--mode", "rgb_only"]) == {
        "mode": "rgb_only", "lr": 0.1, "end_epoch": 2}
    assert parse_command_line("train", ["--config", path, "--mode", "rgb+pose", "--lr",
                                        "0.5"])["lr"] == 0.5
    robust = osp.join(ROOT, "configs", "robust.toml")
    fused = parse_command_line("train", ["--config", osp.join(PAPER, "kinetics50_rgb_pose.toml"),
                                         "--config", robust])
    robust_fields = {"stream_agreement": True, "agreement_scaling": False,
                     "pose_fallback": 0.4, "fusion_frozen_bn": True}
    assert {k: fused[k] for k in robust_fields} == robust_fields
    single = parse_command_line("train", ["--config", osp.join(PAPER, "kinetics50_rgb_only.toml"),
                                          "--config", robust])
    assert not set(robust_fields) & set(single)


@pytest.mark.parametrize("text, words", [
    ("[training]\nend_epoc = 2\n", ["end_epoc", "did you mean end_epoch"]),
    ("[training]\nend_epoch = \"two\"\n", ["[training] end_epoch", "an integer", "'two'"]),
    ("[training]\nend_epoch = 2.5\n", ["end_epoch", "an integer"]),
    ("[network]\nlr = 0.1\n", ["[network] lr", "[training]"]),
    ("end_epoch = 2\n", ["end_epoch", "under [training]"]),
    ("[trainng]\nlr = 0.1\n", ["[trainng]", "not a group"]),
    ("[input]\ninput_img_shape = [224, \"x\"]\n", ["input_img_shape", "integers"]),
    ("[network]\nmode = \"foo\"\n", ["mode", "'foo'", "rgb_only"]),
    ("[network]\npose_gate = \"yes\"\n", ["pose_gate", "true or false"]),
    ("[stage.fusion.training]\nlr = 0.1\n", ["[stage.fusion]", "not a stage"]),
    ("[stage.rgb_only.training]\nlr = \"x\"\n", ["[stage.rgb_only.training] lr", "number"]),
    ("[training\nlr = 1\n", ["not a TOML file"]),
])
@pytest.mark.parametrize("entry", ["train", "test"])
def test_a_bad_file_is_one_line_naming_the_file_and_field(tmp_path, capsys, entry, text, words):
    path = write(tmp_path, text)
    argv = ["--config", path, "--mode", "rgb_only"] + (["--test_epoch", "0"] if entry == "test"
                                                       else [])
    err = one_line_error(capsys, entry, argv)
    assert path in err, err
    for word in words:
        assert word in err, (word, err)


def test_a_missing_file_and_a_missing_mode(tmp_path, capsys):
    missing = str(tmp_path / "nothing.toml")
    assert missing in one_line_error(capsys, "train", ["--config", missing, "--mode", "rgb_only"])
    no_mode = write(tmp_path, "[training]\nend_epoch = 2\n")
    err = one_line_error(capsys, "train", ["--config", no_mode])
    assert "the following arguments are required: --mode" in err
    err = one_line_error(capsys, "test", ["--config", no_mode, "--mode", "rgb_only"])
    assert "the following arguments are required: --test_epoch" in err


def test_train_py_refuses_a_bad_config_file_in_one_line(tmp_path):
    """The real program: one line on stderr, exit status 2, nothing written."""
    path = write(tmp_path, "[training]\nend_epoch = true\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, osp.join(ROOT, "main", "train.py"), "--config", path,
                           "--mode", "rgb_only", "--output_dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {path}: [training] end_epoch: expected an integer, got True "
        "(see train.py --help)"]
    assert not out.exists()


@pytest.mark.parametrize("folder, script", [(".", osp.join("main", "train.py")),
                                            ("main", "train.py")])
def test_train_help_runs_from_the_root_and_from_main(folder, script):
    """`python main/train.py --help` and `cd main && python train.py --help` both work."""
    proc = subprocess.run([sys.executable, script, "--help"], cwd=osp.join(ROOT, folder),
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    assert "--config FILE" in proc.stdout and "--mode" in proc.stdout
