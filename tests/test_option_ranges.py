"""Every config field's declared range: the defaults lie inside, a value just outside is refused
with one line naming the option, the value and the range, from Python, the command line, a
recipe file and tool/train_all.py; the relations between fields; a snapshot's own values load."""
import json
from typing import Any

import pytest

from common.errors import UsageError
from main.cli import config_from_argv, make_parser, parse_command_line
from main.config import FIELDS, FIELD_BY_NAME, build_config
from main.snapshot_config import config_from_snapshot
from main.config_file import read_recipe
from main.config_values import Field, Range, show_value
from tool.recipe.plan import plan_stages

RANGED = [f for f in FIELDS if f.range is not None]


def _outside_number(field: Field, rng: Range) -> Any:
    """A number just below the range (or just above it, where it has no lower bound)."""
    whole = field.base is int or field.base is not float
    if rng.min is not None:
        if rng.min_open:
            return int(rng.min) if whole else float(rng.min)
        return int(rng.min) - 1 if whole else rng.min - 1e-6
    if rng.max_open:
        return int(rng.max) if whole else float(rng.max)
    return int(rng.max) + 1 if whole else rng.max + 1e-6


def just_outside(field: Field) -> Any:
    """A value of the field's type just outside its declared range."""
    rng = field.range
    assert rng is not None
    if field.base in (int, float):
        return _outside_number(field, rng)
    length = rng.lengths[-1] if rng.lengths else 2
    inside = tuple(int(rng.min or 0) + 1 + i for i in range(length))
    return (_outside_number(field, rng),) + inside[1:]


def _toml(value: Any) -> str:
    return json.dumps(list(value)) if isinstance(value, tuple) else repr(value)


def test_every_field_is_declared_and_the_ranged_ones_hold_their_defaults():
    # A field either has a range, a list of choices, or a type that needs neither
    # (true/false, a path or a name, a GPU list with its own syntax).
    for field in FIELDS:
        assert (field.range is not None or field.choices is not None
                or field.base in (bool, str)), field.name
        if field.range is not None and field.default is not None:
            assert field.range.holds(field.default), field.name
    assert len(RANGED) >= 30


@pytest.mark.parametrize("field", RANGED, ids=lambda f: f.name)
def test_a_value_just_outside_is_refused_everywhere(field, tmp_path):
    bad = just_outside(field)
    assert not field.range.holds(bad)
    message = f"--{field.name} must be {field.range.words()}, got {show_value(bad)}"
    # Python callers (and train_all.py, which builds each stage's config the same way).
    with pytest.raises(UsageError) as err:
        build_config({"mode": "rgb_only", field.name: bad})
    assert str(err.value) == message
    # The command line: the same line, pointing at --help.
    with pytest.raises(UsageError) as err:
        config_from_argv("train", ["--mode", "rgb_only", f"--{field.name}={show_value(bad)}"])
    assert str(err.value) == f"{message} (see train.py --help)"
    # A recipe file: the file and the field's table are named.
    path = tmp_path / "recipe.toml"
    path.write_text(f"[{field.group}]\n{field.name} = {_toml(bad)}\n")
    with pytest.raises(UsageError) as err:
        read_recipe(str(path))
    assert str(err.value) == (f"{path}: [{field.group}] {field.name} must be "
                              f"{field.range.words()}, got {show_value(bad)}")


@pytest.mark.parametrize("overrides,message", [
    # At least one (counts and sizes).
    ({"frame_per_seg": 0}, "--frame_per_seg must be 1 or more, got 0"),
    ({"end_epoch": 0}, "--end_epoch must be 1 or more, got 0"),
    ({"save_every": 0}, "--save_every must be 1 or more, got 0"),
    # At least zero.
    ({"num_thread": -1}, "--num_thread must be 0 or more, got -1"),
    ({"log_interval": -2}, "--log_interval must be 0 or more, got -2"),
    # Positive numbers (the bound excluded): rates and sigmas.
    ({"lr": 0.0}, "--lr must be > 0, got 0.0"),
    ({"hm_sigma": -0.5}, "--hm_sigma must be > 0, got -0.5"),
    # Probabilities, closed and half-open.
    ({"context_aug_prob": 1.5}, "--context_aug_prob must be in [0, 1], got 1.5"),
    ({"dropout": 1.0}, "--dropout must be in [0, 1), got 1.0"),
    ({"warmup_factor": 0.0}, "--warmup_factor must be in (0, 1], got 0.0"),
    ({"seed": -1}, "--seed must be in [0, 4294967295], got -1"),
    # Shapes and epoch lists.
    ({"input_hm_shape": (8, 0)}, "--input_hm_shape must be H,W of positive integers, got 8,0"),
    ({"video_shape": (1, 2, 3)},
     "--video_shape must be one number (the shorter side) or H,W of positive integers, "
     "got 1,2,3"),
    ({"lr_dec_epoch": (5, 3)}, "--lr_dec_epoch must be increasing positive integers, got 5,3"),
    ({"lr_dec_epoch": (2, 2)}, "--lr_dec_epoch must be increasing positive integers, got 2,2"),
])
def test_each_kind_of_range(overrides, message):
    with pytest.raises(UsageError) as err:
        build_config({"mode": "rgb_only", **overrides})
    assert str(err.value) == message


def test_values_on_the_edge_and_none_are_accepted():
    cfg = build_config({"mode": "rgb_only", "dropout": 0.0, "context_aug_prob": 1.0,
                        "warmup_factor": 1.0, "num_thread": 0, "end_epoch": 1,
                        "save_every": None, "max_iters_per_epoch": None, "lr": 1e-9,
                        "lr_dec_epoch": (), "seed": 0, "eval_chunk_frames": 0})
    assert cfg.dropout == 0.0 and cfg.save_every is None and cfg.lr_dec_epoch == ()
    # The first epoch a decay can come at, in the shortest run that reaches it.
    assert build_config({"lr_dec_epoch": (1,), "end_epoch": 2}).lr_dec_epoch == (1,)


def test_decay_epochs_a_user_gives_must_lie_inside_the_run():
    with pytest.raises(UsageError) as err:
        build_config({"mode": "rgb_only", "end_epoch": 4, "lr_dec_epoch": (2, 4)})
    assert str(err.value) == (
        "--lr_dec_epoch 2,4 is not inside the run: --end_epoch 4 trains epochs 0..3, so the "
        "decay at epoch 4 never comes; give epochs below 4, or --lr_dec_epoch none for no decay")
    # The paper's default (21, 26) is not the user's choice: a short run simply never decays.
    assert build_config({"mode": "rgb_only", "end_epoch": 2}).lr_dec_epoch == (21, 26)
    # A cosine schedule has no decay epochs to miss.
    assert build_config({"lr_schedule": "cosine", "end_epoch": 2,
                         "lr_dec_epoch": (5,)}).lr_schedule == "cosine"


@pytest.mark.parametrize("text", ["none", "[]", "()", ""])
def test_no_decay_is_an_empty_list_on_the_command_line_and_in_files(text, tmp_path):
    assert parse_command_line("train", ["--mode", "rgb_only", "--lr_dec_epoch", text,
                                        "--end_epoch", "2"]) == {
        "mode": "rgb_only", "lr_dec_epoch": (), "end_epoch": 2}
    recipe = tmp_path / "r.toml"
    recipe.write_text("[training]\nlr_dec_epoch = []\nend_epoch = 2\n")
    assert build_config(read_recipe(str(recipe)).fields).lr_dec_epoch == ()
    assert show_value(()) == "none"  # how train_all forwards it to train.py


@pytest.mark.parametrize("overrides,message", [
    ({"pose_frame_factor": 3}, "--pose_frame_factor 3 must divide --frame_interval 8"),
    ({"gate_target": "swap"},
     "--gate_target swap needs context augmentation (--context_aug_prob > 0)"),
    ({"lr_schedule": "cosine", "lr": 0.01, "lr_min": 0.1},
     "--lr_min 0.1 must not exceed --lr 0.01: the cosine schedule falls from lr to lr_min"),
    ({"warmup_epochs": 3.5, "end_epoch": 3},
     "--warmup_epochs 3.5 must not exceed --end_epoch 3: the learning rate would never "
     "reach --lr"),
])
def test_relations_between_fields(overrides, message):
    with pytest.raises(UsageError) as err:
        build_config({"mode": "rgb_only", **overrides})
    assert str(err.value) == message


def test_relations_hold_once_resolved():
    # lr_min against the stage's own learning rate (rgb+pose: 5e-4), the user gave only lr_min.
    with pytest.raises(UsageError, match="--lr_min 0.001 must not exceed --lr 0.0005"):
        build_config({"mode": "rgb+pose", "lr_schedule": "cosine", "lr_min": 1e-3})
    assert build_config({"mode": "rgb_only", "lr_schedule": "cosine", "lr_min": 1e-3}).lr == 5e-3
    # The step schedule has no lr_min to reach.
    assert build_config({"mode": "rgb+pose", "lr_min": 1e-3}).lr_min == 1e-3


def _saved(**fields):
    """A snapshot's config as read back from disk (tuples as lists)."""
    cfg = dict(build_config({"mode": "rgb+pose"}), **fields)
    return json.loads(json.dumps(cfg))


def test_a_snapshots_own_values_load_even_out_of_range():
    # A snapshot written by a version with other ranges: its values are the network it holds.
    saved = _saved(dropout=1.0, hm_sigma=0.0, lr_schedule="cosine", lr=0.01, lr_min=0.5)
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 3}, purpose="test",
                               snapshot="s.pth", entry="test")
    assert cfg.dropout == 1.0 and cfg.hm_sigma == 0.0
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "continue_train": True},
                               purpose="resume", snapshot="s.pth", entry="train")
    assert cfg.lr_min == 0.5 and cfg.lr == 0.01
    # What the user gives is still checked, and so are relations with what the user gives.
    with pytest.raises(UsageError, match=r"--test_batch_size must be 1 or more, got 0"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 3, "test_batch_size": 0},
                             purpose="test", snapshot="s.pth", entry="test")
    with pytest.raises(UsageError, match=r"^--end_epoch must be 1 or more, got 0 "):
        config_from_snapshot(saved, {"mode": "rgb+pose", "end_epoch": 0},
                             purpose="resume", snapshot="s.pth", entry="train")
    warm = _saved(warmup_epochs=2.0)
    with pytest.raises(UsageError, match=r"^--warmup_epochs 2 must not exceed --end_epoch 1:"):
        config_from_snapshot(warm, {"mode": "rgb+pose", "end_epoch": 1},
                             purpose="resume", snapshot="s.pth", entry="train")


def test_train_all_refuses_out_of_range_values(tmp_path):
    with pytest.raises(UsageError) as err:
        plan_stages(str(tmp_path), ["--lr", "0"])
    # The shared options are checked with the first stage's config.
    assert str(err.value) == "rgb_only: --lr must be > 0, got 0.0 (see train.py --help)"
    with pytest.raises(UsageError) as err:
        plan_stages(str(tmp_path), [], {"pose_only": ["--dropout", "2"]})
    assert str(err.value) == "pose_only: --dropout must be in [0, 1), got 2.0 (see train.py --help)"
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[stage.rgb_only.input]\nframe_interval = 0\n')
    with pytest.raises(UsageError) as err:
        plan_stages(str(tmp_path), [], config_files=[str(recipe)])
    assert str(err.value) == (f"{recipe}: [stage.rgb_only.input] frame_interval must be "
                              "1 or more, got 0")


def test_help_shows_each_range(capsys):
    with pytest.raises(SystemExit):
        parse_command_line("train", ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in RANGED:
        assert f"[range: {field.range.words()}]" in text, field.name
    assert "--frame_per_seg N frames per clip (default: 8) [range: 1 or more]" in text
    assert "--dropout X dropout probability before the classifier (default: 0.5) " \
           "[range: in [0, 1)]" in text
    assert make_parser("test").format_help().count("[range:") == len(RANGED)
    assert FIELD_BY_NAME["lr"].range.words() == "> 0"
