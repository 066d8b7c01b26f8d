"""The robust recipe's output rule: the fused prediction where the streams agree, the pose
stage's own where they do not (common/nets/pose_fallback.py), in the model and in the config."""
import pytest
import torch

from common.errors import UsageError
from common.nets.pose_fallback import fall_back_to_pose
from main.config import build_config
from main.snapshot_config import config_from_snapshot
from tests.test_model import tiny_inputs, tiny_model
from tool import choose_fallback


def test_the_mixture_by_hand():
    fused = torch.log(torch.tensor([[0.7, 0.2, 0.1]] * 4))
    pose = torch.tensor([[0.1, 0.1, 0.8]] * 4)
    # T = 0.2: agreement at T, three quarters of it, half of it and none: w = 1, 0.5, 0, 0.
    logits, share = fall_back_to_pose(fused, pose, torch.tensor([0.2, 0.15, 0.1, 0.0]),
                                      threshold=0.2)
    half = [0.5 * 0.7 + 0.5 * 0.1, 0.5 * 0.2 + 0.5 * 0.1, 0.5 * 0.1 + 0.5 * 0.8]
    expected = torch.tensor([[0.7, 0.2, 0.1], half, [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    assert torch.allclose(torch.softmax(logits, dim=1), expected, atol=1e-6)
    assert torch.allclose(share, torch.tensor([0.0, 0.5, 1.0, 1.0]))
    # Above the threshold the fused prediction stands alone (the weight is capped at 1).
    logits, share = fall_back_to_pose(fused[:1], pose[:1], torch.tensor([0.9]), threshold=0.2)
    assert torch.allclose(torch.softmax(logits, 1), expected[:1], atol=1e-6) and share[0] == 0
    with pytest.raises(ValueError):
        fall_back_to_pose(fused, pose, torch.zeros(4), threshold=0.0)


def test_the_model_falls_back_at_evaluation_only():
    plain = tiny_model("rgb+pose", stream_agreement=True)
    robust = tiny_model("rgb+pose", stream_agreement=True, pose_fallback=0.5)
    robust.load_state_dict(plain.state_dict())  # the rule adds no weights
    inputs = tiny_inputs()
    # Training: the fused classifier's own logits, as the paper trains them.
    plain.train(), robust.train()
    torch.manual_seed(1)
    trained = plain(inputs)["logits"]
    torch.manual_seed(1)
    assert torch.equal(robust(inputs)["logits"], trained)
    # Evaluation: the mixture of the fused and the pose stage's probabilities.
    plain.eval(), robust.eval()
    out, ref = robust(inputs), plain(inputs)
    with torch.no_grad():
        agg = plain.aggregator
        img_feat = plain.img_backbone(inputs["video"].flatten(0, 1))
        pose_feat = plain.pose_features(inputs["pose_coords"], inputs["pose_scores"])
        p_img, p_pose = agg.clip_stage_probs(img_feat, pose_feat)
    agreement = (p_img * p_pose).sum(1)
    assert torch.allclose(out["agreement"], agreement) and torch.allclose(ref["agreement"],
                                                                           agreement)
    w = (2 * agreement / 0.5 - 1).clamp(0, 1)[:, None]
    expected = w * torch.softmax(ref["logits"], 1) + (1 - w) * p_pose
    assert torch.allclose(torch.softmax(out["logits"], 1), expected, atol=1e-6)
    assert torch.allclose(out["pose_share"], 1 - w[:, 0]) and ref["pose_share"] is None


def test_the_rule_needs_the_stages_classifiers():
    with pytest.raises(ValueError, match="stream_agreement"):
        tiny_model("rgb+pose", pose_fallback=0.5)
    with pytest.raises(UsageError) as err:
        build_config({"mode": "rgb+pose", "pose_fallback": 0.2})
    assert str(err.value) == ("--pose_fallback 0.2 needs --stream_agreement true (the rgb_only "
                              "and pose_only stages' classifiers judge the agreement)")
    with pytest.raises(UsageError, match=r"--pose_fallback must be in \[0, 1\], got 1.5"):
        build_config({"mode": "rgb+pose", "stream_agreement": True, "pose_fallback": 1.5})


def test_a_test_may_set_another_threshold_than_the_snapshots():
    saved = dict(build_config({"mode": "rgb+pose", "stream_agreement": True,
                               "pose_fallback": 0.2}))
    same = config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 0}, purpose="test",
                                snapshot="s.pth.tar", entry="test")
    assert same.pose_fallback == 0.2  # the snapshot's value by default
    other = config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 0,
                                         "pose_fallback": 0.05}, purpose="test",
                                 snapshot="s.pth.tar", entry="test")
    assert other.pose_fallback == 0.05
    # A resumed run may carry another threshold too (train_all asks a finished stage to go on).
    resumed = config_from_snapshot(saved, {"mode": "rgb+pose", "pose_fallback": 0.5},
                                   purpose="resume", snapshot="s.pth.tar", entry="train")
    assert resumed.pose_fallback == 0.5
    # Any other network field still belongs to the snapshot.
    with pytest.raises(UsageError, match="contradicts s.pth.tar"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 0, "gate_hidden": 8},
                             purpose="test", snapshot="s.pth.tar", entry="test")


def test_test_py_waits_for_the_snapshot_before_judging_the_rule():
    # test.py: --stream_agreement comes from the snapshot, so the command line alone is not
    # refused; the rule is judged once the snapshot's value is in.
    cfg = build_config({"mode": "rgb+pose", "test_epoch": 0, "pose_fallback": 0.2},
                       entry="test")
    assert cfg.pose_fallback == 0.2
    saved = dict(build_config({"mode": "rgb+pose"}))  # a snapshot without stage classifiers
    with pytest.raises(UsageError, match="needs --stream_agreement true"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 0, "pose_fallback": 0.2},
                             purpose="test", snapshot="s.pth.tar", entry="test")


def test_without_scaling_the_fusion_is_the_papers():
    # agreement_scaling false: the stages' classifiers are there (for the fallback), the fused
    # features are those of the paper's model with the same weights.
    paper = tiny_model("rgb+pose")
    heads = tiny_model("rgb+pose", stream_agreement=True, agreement_scaling=False)
    heads.load_state_dict({**heads.state_dict(), **paper.state_dict()})
    paper.eval(), heads.eval()
    inputs = tiny_inputs()
    a, b = paper(inputs), heads(inputs)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-6)
    assert b["agreement"] is not None and b["pose_probs"] is not None
    scaled = tiny_model("rgb+pose", stream_agreement=True)
    scaled.load_state_dict(heads.state_dict())
    assert not torch.allclose(scaled.eval()(inputs)["logits"], a["logits"], atol=1e-4)


@pytest.mark.parametrize("argv,message", [
    (["--thresholds", "0,-0.1"], "--thresholds 0,-0.1: -0.1 is not a pose_fallback; give values "
                                 "in [0, 1] (0: no fallback)"),
    (["--thresholds", "1.5"], "--thresholds 1.5: 1.5 is not a pose_fallback; give values in "
                              "[0, 1] (0: no fallback)"),
    (["--thresholds", "0.2,nan"], "--thresholds 0.2,nan: nan is not a pose_fallback; give "
                                  "values in [0, 1] (0: no fallback)"),
    (["--thresholds", "0.2,"], "--thresholds must be numbers, got '0.2,'"),
    (["--seeds", "0"], "--seeds 0: give 1 or more (how many seeds to read)"),
    (["--fusion_dirs", ""], "--fusion_dirs '' names no folder: give the rgb+pose folders to "
                            "choose among, e.g. fusion_robust"),
    (["--fusion_dirs", ","], "--fusion_dirs ',' names no folder: give the rgb+pose folders to "
                             "choose among, e.g. fusion_robust"),
])
def test_choose_fallback_refuses_its_arguments_in_one_line(argv, message, tmp_path, capsys):
    # Checked before any snapshot is read: the output folder holds none.
    with pytest.raises(SystemExit) as stop:
        choose_fallback.main(["--output_dir", str(tmp_path)] + argv)
    assert stop.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_choose_fallback_takes_thresholds_on_the_bounds(tmp_path):
    args, fusion_dirs, thresholds = choose_fallback.parse_arguments(
        ["--output_dir", str(tmp_path), "--thresholds", "0,0.5,1", "--fusion_dirs", "a,,b"])
    assert thresholds == [0.0, 0.5, 1.0] and fusion_dirs == ["a", "b"] and args.seeds == 1


def test_a_tie_on_the_worst_seed_goes_to_the_larger_mean_margin():
    # Margins move in steps of one video, so two thresholds often share the worst seed's margin
    # (computed in another order, equal up to rounding); the seeds' mean margin then decides.
    rows = [{"threshold": 0.4, "seeds_meeting_all": 5, "worst_margin": 0.2916666666666714,
             "mean_margin": 0.82},
            {"threshold": 0.45, "seeds_meeting_all": 5, "worst_margin": 0.29166666666666,
             "mean_margin": 0.90},
            {"threshold": 0.5, "seeds_meeting_all": 4, "worst_margin": 2.0, "mean_margin": 3.0}]
    assert max(rows, key=choose_fallback.rank)["threshold"] == 0.45
    rows[0]["mean_margin"] = 0.95
    assert max(rows, key=choose_fallback.rank)["threshold"] == 0.4
