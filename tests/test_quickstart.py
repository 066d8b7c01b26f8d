"""The quickstart pipeline end to end, in its fast mode (tiny sizes, a few iterations)."""
import json
import os.path as osp

import numpy as np

from tool import quickstart


def test_quickstart_fast(tmp_path, capsys):
    out = quickstart.main(["--fast", "--output_dir", str(tmp_path), "--workers", "0"])
    printed = capsys.readouterr().out
    names = [r.name for r in quickstart.recipes(fast=True)]
    assert list(out["summary"]) == names
    for name in names:
        for split in ("in context", "out of context"):
            top1, spread = out["summary"][name][split]["top1"]
            top5, _ = out["summary"][name][split]["top5"]
            assert 0 <= top1 <= top5 <= 100 and spread == 0.0
    # The fused recipes report the mean gate value in (0, 1).
    gate = out["summary"][names[-1]]["in context"]["gate"][0]
    assert 0 < gate < 1
    table = open(out["table"]).read()
    assert table.count("\n| ") == 1 + len(names)  # header + one row per stage
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
