"""tool/benchmark.py in its smoke mode: every case runs on tiny sizes and is reported (no timing
assertions: these figures mean something only at the paper's sizes on a quiet machine)."""
import json
import os.path as osp

import pytest
import torch

from tool import benchmark
from tool.benchmarks import roofline, scaling


def test_smoke_mode_runs_every_case_and_writes_the_report(tmp_path, capsys):
    report = benchmark.main(["--smoke", "--output_dir", str(tmp_path), "--workers", "0"])
    printed = capsys.readouterr().out
    saved = json.load(open(osp.join(tmp_path, "result", "benchmark.json")))
    assert saved["smoke"] is True and set(saved["results"]) == set(benchmark.DEFAULT_CASES)
    results = report["results"]
    # Each comparison checks that both sides compute the same thing.
    assert results["pose_maps"]["max_abs_diff"] <= 1e-5
    assert results["inference"]["max_abs_prob_diff"] <= 1e-4
    # The convolution floor: positive work and rate, and the bound follows from them.
    inference = results["inference"]
    assert inference["conv_gflops_per_clip"] > 0 and inference["peak_conv_gflops_per_s"] > 0
    assert inference["conv_floor_s"] == pytest.approx(
        inference["conv_gflops_per_clip"] / inference["peak_conv_gflops_per_s"])
    assert inference["best_possible_speedup"] == pytest.approx(
        inference["baseline_s"] / inference["conv_floor_s"])
    assert "convolution floor" in printed
    # The evaluation's steps, one at a time, from the original's way to test.py's.
    steps = [row["step"] for row in inference["network_steps"]]
    assert steps[0] == "the original's way" and steps[-1].startswith("+ sub-batches")
    assert inference["network_steps"][0]["vs_original"] == 1.0
    assert all(row["per_clip_s"] > 0 for row in inference["network_steps"])
    assert [row["split"] for row in results["loading"]["rows"]] == ["test", "train"]
    assert set(results["loading"]["ready_clips_per_s"]) == {"float32", "uint8",
                                                            "float32, reused slots"}
    assert all(v > 0 for v in results["loading"]["ready_clips_per_s"].values())
    assert "ready-made clips" in printed
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


def test_scaling_is_opt_in_and_its_smoke_run_measures_every_point(tmp_path, capsys):
    assert "scaling" in benchmark.CASES and "scaling" not in benchmark.DEFAULT_CASES
    plot = tmp_path / "scaling.png"
    report = benchmark.main(["--smoke", "--cases", "scaling", "--output_dir", str(tmp_path),
                             "--plot", str(plot)])
    printed = capsys.readouterr().out
    # A run of some cases has its own file: the full run's figures stay.
    saved = json.load(open(osp.join(tmp_path, "result", "benchmark_scaling.json")))
    assert set(saved["results"]) == {"scaling"}
    assert not osp.exists(osp.join(tmp_path, "result", "benchmark.json"))
    result = report["results"]["scaling"]
    sweeps = {s["name"]: s for s in result["sweeps"]}
    assert list(sweeps) == ["people", "hm", "frames", "batch"]
    for name, sweep in sweeps.items():
        points = sweep["points"]
        assert [p["value"] for p in points] == list(scaling.sweeps(smoke=True)[
            list(sweeps).index(name)].values) and len(points) == 2
        for p in points:
            # Nothing is skipped at the smoke sizes: both sides ran and drew the same maps.
            assert p["dense_skipped"] is None
            assert p["ours_s"] > 0 and p["dense_s"] > 0 and p["repeats"] >= 1
            assert abs(p["ours_per_clip_s"] * p["shape"]["clips"] - p["ours_s"]) < 1e-12
            assert p["max_abs_diff"] <= 1e-5
            # The network runs on the frames and batch sweeps only.
            if name in ("frames", "batch"):
                assert p["network_s"] > 0 and p["network_per_clip_s"] > 0
            else:
                assert p["network_s"] is None
    # The swept parameter is the one that moves; everyone is real in the people sweep.
    assert [p["shape"]["people"] for p in sweeps["people"]["points"]] == [1, 3]
    assert [p["shape"]["real"] for p in sweeps["people"]["points"]] == [1, 3]
    assert [p["shape"]["hm"] for p in sweeps["hm"]["points"]] == [8, 16]
    assert [p["shape"]["frames"] for p in sweeps["frames"]["points"]] == [2, 4]
    assert [p["shape"]["clips"] for p in sweeps["batch"]["points"]] == [1, 2]
    assert result["targets"]["max abs diff <= 1e-5"]
    assert result["plot"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for line in ("| scaling: sweep |", "| people per frame (all real) | 1 |", "| 16 |"):
        assert line in printed and line in saved["table"]
    assert "| case | ours | baseline |" not in printed  # no empty comparison table


def test_scaling_skips_the_dense_side_over_its_memory_limit_and_says_why():
    shape = scaling.base_shape(smoke=True)
    estimate = scaling.dense_intermediate_bytes(shape)
    # 2 clips x 2 frames x 3 people x 18 joint channels x 8 x 8 float32.
    assert estimate == 2 * 2 * 3 * 18 * 8 * 8 * 4
    point = scaling.render_point(shape, device=torch.device("cpu"), repeats=1,
                                 dense_limit_bytes=estimate - 1)
    assert point["ours_s"] > 0
    assert point["dense_s"] is None and point["speedup"] is None and point["max_abs_diff"] is None
    assert "intermediate" in point["dense_skipped"] and "limit" in point["dense_skipped"]


def test_conv_flops_counts_a_hand_computed_network():
    # conv 3 -> 4, 3x3, stride 1, padding 1 on (2, 3, 5, 5): 2 * 2*4*5*5 * 3*9 = 10800;
    # then conv 4 -> 6, 1x1, stride 2 (-> 3x3), groups 2: 2 * 2*6*3*3 * 2*1 = 432.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1),
                              torch.nn.Conv2d(4, 6, 1, stride=2, groups=2))
    x = torch.zeros(2, 3, 5, 5)
    assert roofline.conv_flops(net, lambda: net(x)) == 10800 + 432
    # The hooks are gone afterwards: a second count is the same, not doubled.
    assert roofline.conv_flops(net, lambda: net(x)) == 10800 + 432


def test_precision_case_runs_train_pys_step_on_both_sides_and_is_default_only_on_a_gpu(
        tmp_path, capsys):
    assert "precision" in benchmark.CASES
    assert "precision" not in benchmark.default_cases(torch.device("cpu"))
    assert "precision" in benchmark.default_cases(torch.device("cuda"))
    report = benchmark.main(["--smoke", "--cases", "precision", "--output_dir", str(tmp_path)])
    printed = capsys.readouterr().out
    saved = json.load(open(osp.join(tmp_path, "result", "benchmark_precision.json")))
    rows = saved["results"]["precision"]["rows"]
    assert [row["stage"] for row in rows] == ["rgb_only", "pose_only", "rgb+pose"]
    for row in rows:
        assert row["fp32_clips_per_s"] > 0 and row["mixed_clips_per_s"] > 0
        assert row["speedup"] == pytest.approx(row["mixed_clips_per_s"] / row["fp32_clips_per_s"])
        assert row["mixed"].startswith("precision bf16, channels_last on")
    # The targets are the GPU's: none on the CPU, and the table says so.
    assert report["results"]["precision"]["targets"] == {}
    assert "| training, precision |" in printed and "targets: GPU only" in printed


def test_export_case_is_opt_in_and_compares_onnxruntime_with_eager(tmp_path, capsys):
    assert "export" in benchmark.CASES and "export" not in benchmark.DEFAULT_CASES
    report = benchmark.main(["--smoke", "--cases", "export", "--output_dir", str(tmp_path)])
    printed = capsys.readouterr().out
    result = report["results"]["export"]
    # Same weights, same inputs: the same probabilities, and both sides measured.
    assert result["max_abs_prob_diff"] <= 1e-4 and result["targets"]["probabilities within 1e-4"]
    assert result["ours_clips_per_s"] > 0 and result["baseline_clips_per_s"] > 0
    assert result["speedup"] == pytest.approx(result["ours_clips_per_s"]
                                              / result["baseline_clips_per_s"])
    assert "| onnxruntime vs eager PyTorch" in printed and "export: ours = onnxruntime" in printed
    assert osp.isfile(osp.join(tmp_path, "result", "benchmark_export.json"))
