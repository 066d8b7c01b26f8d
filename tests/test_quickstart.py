"""The quickstart pipeline end to end, in its fast mode (tiny sizes, a few iterations)."""
import json
import os.path as osp

import numpy as np

from tool import quickstart


def test_quickstart_fast(tmp_path, capsys):
    out = quickstart.main(["--fast", "--output_dir", str(tmp_path), "--workers", "0"])
    printed = capsys.readouterr().out
    names = [r.name for r in quickstart.RECIPES]
    assert list(out["summary"]) == names
    for name in names:
        for split in ("in context", "out of context"):
            top1, spread = out["summary"][name][split]["top1"]
            top5, _ = out["summary"][name][split]["top5"]
            assert 0 <= top1 <= top5 <= 100 and spread == 0.0
    # The fused recipes report the mean gate value in (0, 1); the robust one, which scales the
    # scene by the streams' agreement, reports that agreement too.
    gate = out["summary"][names[-1]]["in context"]["gate"][0]
    assert 0 < gate < 1
    agreement = out["summary"][names[-1]]["out of context"]["agreement"][0]
    assert 0 < agreement < 1
    assert "agreement" not in out["summary"][names[-2]]["in context"]
    table = open(out["table"]).read()
    stages, checks = table.split("| criterion (top-1) |")
    assert stages.count("\n| ") == 1 + len(names)  # header + one row per stage
    assert checks.count("\n| ") == 5  # one row per criterion
    for name in names:
        assert f"| {name} |" in table and f"| {name} |" in printed
    assert osp.getsize(out["chart"]) > 1000 and open(out["chart"], "rb").read(4) == b"\x89PNG"
    saved = json.load(open(osp.join(tmp_path, "result", "quickstart.json")))
    assert saved["seeds"] == [0]
    # Every stage wrote its snapshots and the result files that the table was read from.
    fused = osp.join(tmp_path, "quickstart", "seed0", "fusion_robust")
    metrics = json.load(open(osp.join(fused, "result", "mimetics_metrics.json")))
    assert np.isclose(metrics["top1"], out["summary"][names[-1]]["out of context"]["top1"][0])
    assert osp.isfile(osp.join(fused, "model_dump", "snapshot_1.pth.tar"))


def test_summarise_mean_and_spread():
    per_seed = [{"a": {"in context": {"top1": 50.0}}}, {"a": {"in context": {"top1": 70.0}}}]
    assert quickstart.summarise(per_seed) == {"a": {"in context": {"top1": (60.0, 10.0)}}}


def test_claim_checks_follow_the_stated_criteria():
    def row(i, o):
        return {"in context": {"top1": (i, 0.0)}, "out of context": {"top1": (o, 0.0)}}
    summary = {"rgb_only": row(99.0, 0.0), "pose_only": row(60.0, 60.0),
               "rgb+pose (paper)": row(100.0, 16.0), "rgb+pose (robust)": row(97.0, 55.0)}
    checks = dict(quickstart.claim_checks(summary))
    assert list(checks) == [
        "in context: rgb+pose >= rgb_only - 2", "in context: rgb+pose > pose_only",
        "out of context: rgb_only drops by >= 30", "out of context: rgb+pose >= rgb_only + 20",
        "out of context: rgb+pose >= pose_only - 5"]
    paper = {k: v["rgb+pose (paper)"] for k, v in checks.items()}
    robust = {k: v["rgb+pose (robust)"] for k, v in checks.items()}
    assert list(paper.values()) == [True, True, True, False, False]
    assert all(robust.values())  # 97 = 99 - 2 and 55 = 60 - 5 are on the boundary: they hold
    summary["rgb+pose (robust)"] = row(96.9, 54.9)
    robust = {k: v["rgb+pose (robust)"] for k, v in quickstart.claim_checks(summary)}
    assert list(robust.values()) == [False, True, True, True, False]
    assert "**no**" in quickstart.markdown_checks(summary)
