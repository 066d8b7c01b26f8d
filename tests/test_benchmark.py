"""tool/benchmark.py in its smoke mode: every case runs on tiny sizes and is reported (no timing
assertions: these figures mean something only at the paper's sizes on a quiet machine)."""
import json
import os.path as osp

from tool import benchmark


def test_smoke_mode_runs_every_case_and_writes_the_report(tmp_path, capsys):
    report = benchmark.main(["--smoke", "--output_dir", str(tmp_path), "--workers", "0"])
    printed = capsys.readouterr().out
    saved = json.load(open(osp.join(tmp_path, "result", "benchmark.json")))
    assert saved["smoke"] is True and set(saved["results"]) == set(benchmark.CASES)
    results = report["results"]
    # Each comparison checks that both sides compute the same thing.
    assert results["pose_maps"]["max_abs_diff"] <= 1e-5
    assert results["inference"]["max_abs_prob_diff"] <= 1e-4
    assert [row["split"] for row in results["loading"]["rows"]] == ["test", "train"]
    steps = {row["stage"]: row for row in results["train_step"]["rows"]}
    assert list(steps) == ["rgb_only", "pose_only", "rgb+pose"]
    # What a stage does not need, it does not do.
    assert steps["rgb_only"]["renders_per_step"] == 0 and steps["pose_only"]["renders_per_step"] == 1
    assert "video" not in steps["pose_only"]["batch_keys"]
    for row in steps.values():
        assert abs(sum(row["share"].values()) - 1) < 1e-6
    for line in ("| pose maps (per clip) |", "| loading, test split", "| rgb+pose |",
                 "| test.py evaluation"):
        assert line in printed and line in saved["table"]
