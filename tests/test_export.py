"""tool/export.py: the test-time network, pose-map rendering included, as an ONNX file run by
onnxruntime and as a torch.export program, against eager PyTorch.

The snapshots are those of the reference-equivalence test (tests/test_reference_equivalence.py:
randomised weights and BatchNorm statistics, OpenPose-18, 4 frames, 14 x 14 pose maps, people
padded with score 0, a zero-length limb), saved with their config so that the exporter and the
demo rebuild them; rgb+pose also has the stream agreement. Each stage is exported once (a
module fixture: an ONNX export takes tens of seconds).
"""
from __future__ import annotations

import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.errors import UsageError
from common.export.onnx_runtime import OnnxModel, execution_providers
from common.export.files import load_torch_export
from common.model import build_model
from common.train.checkpoint import save_snapshot
from data.joint_sets import OPENPOSE_18
from main.config import build_config
from main.demo import main as demo_main
from tests.test_demo import write_poses
from tests.test_extract_poses import encode_video
from tests.test_reference_equivalence import randomised
from common.export.signature import example_inputs
from main.snapshot_config import inference_config
from tool import export as export_tool
from tool.export import build_network, compare_with_eager
from tool.export import main as export_main

MODES = ("rgb_only", "pose_only", "rgb+pose")
SMALL = dict(frame_per_seg=4, frame_interval=2, video_shape=(64,), input_img_shape=(56, 56),
             input_hm_shape=(14, 14), top_k_pose=5, pretrained="none")
TOL = 1e-4


def save_reference_snapshot(path: str, mode: str) -> str:
    cfg = build_config(dict(mode=mode, stream_agreement=mode == "rgb+pose", **SMALL))
    model = build_model(cfg, 6, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    save_snapshot(path, randomised(model, seed=1), None, 29, mode, config=dict(cfg))
    return path


def eager_model(path: str) -> torch.nn.Module:
    """The snapshot in PyTorch, as test.py builds it (the compact renderer on the CPU)."""
    snap = torch.load(path, weights_only=True)
    cfg = build_config(dict(snap["config"], class_num=6))
    model = build_model(cfg, 6, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.load_state_dict({k[len("module."):]: v for k, v in snap["network"].items()})
    return model.eval()


def reference_inputs(batch: int, seed: int) -> dict:
    """Clips as the reference test draws them: 5 people, 3 of them padded, a zero-length limb."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(batch, 4, 5, 18, 2, generator=g) * 14
    coords[0, :, 1, 3] = coords[0, :, 1, 2]  # R_Shoulder -> R_Elbow of length 0
    scores = torch.rand(batch, 4, 5, 18, generator=g)
    scores[:, :, 3:] = 0
    return {"video": torch.rand(batch, 4, 3, 56, 56, generator=g), "pose_coords": coords,
            "pose_scores": scores}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    files = {}
    for mode in MODES:
        snap = save_reference_snapshot(str(root / f"{mode.replace('+', '_')}.pth.tar"), mode)
        out = str(root / f"{mode.replace('+', '_')}.onnx")
        # The tool's own check runs once (rgb+pose); the parity tests below do it for all.
        summary = export_main(["--ckpt", snap, "--format", "onnx", "--out", out]
                              + ([] if mode == "rgb+pose" else ["--no_check"]))
        files[mode] = {"snap": snap, "onnx": out, "summary": summary}
    return {"root": root, "files": files}


@pytest.mark.parametrize("mode", MODES)
def test_onnxruntime_matches_eager_pytorch_on_batches_of_1_and_3(exported, mode):
    files = exported["files"][mode]
    eager, session = eager_model(files["snap"]), OnnxModel(files["onnx"])
    info = session.info
    assert info.mode == mode and info.class_num == 6
    expected_inputs = {"rgb_only": ["video"], "pose_only": ["pose_coords", "pose_scores"],
                       "rgb+pose": ["video", "pose_coords", "pose_scores"]}[mode]
    assert info.inputs == expected_inputs
    assert [i.name for i in session.session.get_inputs()] == expected_inputs
    assert info.outputs == ["logits", "probs"] + (["gate", "agreement"] if mode == "rgb+pose"
                                                  else [])
    for batch in (1, 3):  # one file, two batch sizes: the batch axis is dynamic
        inputs = reference_inputs(batch, seed=batch)
        with torch.no_grad():
            ours = eager(inputs)
        got = session(inputs)
        assert got["logits"].shape == (batch, 6)
        assert float((got["logits"] - ours["logits"]).abs().max()) < TOL
        probs = session.session.run(["probs"], {k: inputs[k].numpy() for k in info.inputs})[0]
        np.testing.assert_allclose(probs, torch.softmax(ours["logits"], 1).numpy(), atol=TOL)
        assert np.ptp(probs, axis=1).min() > 1e-3  # not a comparison of two uniforms
        for key in ("gate", "agreement"):
            if mode == "rgb+pose":
                assert got[key].shape == ours[key].shape
                assert float((got[key] - ours[key]).abs().max()) < TOL
            else:
                assert got[key] is None and ours[key] is None


def test_the_tools_check_and_summary(exported):
    summary = exported["files"]["rgb+pose"]["summary"]
    assert summary["check_max_abs_diff"] is not None and summary["check_max_abs_diff"] < TOL
    assert exported["files"]["rgb_only"]["summary"]["check_max_abs_diff"] is None
    # int32 addressing of the pose maps bounds the batch; rgb_only renders none.
    channels = 18 + 2 * len(OPENPOSE_18.limbs)
    assert summary["max_batch"] == (2 ** 31 - 1) // (4 * channels * 14 * 14)
    assert exported["files"]["rgb_only"]["summary"]["max_batch"] is None
    assert summary["config"]["frame_per_seg"] == 4


def test_torch_export_program_matches_eager_pytorch(exported, tmp_path):
    snap = exported["files"]["pose_only"]["snap"]
    out = str(tmp_path / "pose_only.pt2")
    summary = export_main(["--ckpt", snap, "--format", "torch", "--out", out])
    assert summary["check_max_abs_diff"] < TOL
    program, info = load_torch_export(out)
    assert info.mode == "pose_only" and info.inputs == ["pose_coords", "pose_scores"]
    module, eager = program.module(), eager_model(snap)
    for batch in (1, 3):
        inputs = reference_inputs(batch, seed=10 + batch)
        del inputs["video"]
        with torch.no_grad():
            logits, probs = module(**inputs)
            expected = eager(inputs)["logits"]
        assert float((logits - expected).abs().max()) < TOL
        assert float((probs - torch.softmax(expected, 1)).abs().max()) < TOL


def test_demo_gives_the_same_top_classes_with_both_backends(exported, tmp_path, capsys):
    video = str(tmp_path / "clip.mp4")
    encode_video(video, 24, rate=8)
    poses = write_poses(str(tmp_path / "poses.json"), 24)
    common = ["--video", video, "--poses", poses, "--device", "cpu", "--out_dir",
              str(tmp_path / "vis"), "--test_infer_num", "3", "--video_format", "none"]
    files = exported["files"]["rgb+pose"]
    eager = demo_main(common + ["--ckpt", files["snap"], "--name", "eager"])
    onnx = demo_main(common + ["--backend", "onnxruntime", "--model", files["onnx"],
                               "--name", "onnx"])
    assert onnx["backend"] == "onnxruntime" and onnx["ckpt"] == files["onnx"]
    assert [t["class"] for t in onnx["top5"]] == [t["class"] for t in eager["top5"]]
    np.testing.assert_allclose(onnx["probs"], eager["probs"], atol=TOL)
    assert np.ptp(eager["probs"]) > 1e-3
    np.testing.assert_allclose(onnx["gates"], eager["gates"], atol=TOL)
    np.testing.assert_allclose(onnx["agreements"], eager["agreements"], atol=TOL)
    assert onnx["clips"] == [dict(c, prob=o["prob"]) for c, o in zip(eager["clips"], onnx["clips"])]


def one_line_error(capsys, run, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        run(argv)
    assert stop.value.code in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_what_does_not_export_is_refused_in_one_line(exported, tmp_path, capsys):
    snap = exported["files"]["rgb_only"]["snap"]
    assert "writes a .onnx file" in one_line_error(
        capsys, export_main, ["--ckpt", snap, "--format", "onnx", "--out", str(tmp_path / "m.pt2")])
    assert "trained in mode 'rgb_only' but --mode is 'pose_only'" in one_line_error(
        capsys, export_main, ["--ckpt", snap, "--format", "torch", "--mode", "pose_only",
                              "--out", str(tmp_path / "m.pt2")])
    merged = torch.load(snap, weights_only=True)
    merged["merged"] = True
    torch.save(merged, str(tmp_path / "merged.pth.tar"))
    assert "the merge tool's output" in one_line_error(
        capsys, export_main, ["--ckpt", str(tmp_path / "merged.pth.tar"), "--format", "torch",
                              "--out", str(tmp_path / "m.pt2")])
    assert not (tmp_path / "m.pt2").exists()


def test_demo_backend_options_and_files_are_checked(exported, tmp_path, capsys):
    files = exported["files"]["rgb+pose"]
    base = ["--video", str(tmp_path / "none.mp4"), "--device", "cpu"]
    (tmp_path / "none.mp4").write_bytes(b"")
    assert "--backend onnxruntime needs --model" in one_line_error(
        capsys, demo_main, base + ["--backend", "onnxruntime"])
    assert "leave out --ckpt" in one_line_error(
        capsys, demo_main, base + ["--backend", "onnxruntime", "--model", files["onnx"],
                                   "--ckpt", files["snap"]])
    assert "add --backend onnxruntime" in one_line_error(
        capsys, demo_main, base + ["--ckpt", files["snap"], "--model", files["onnx"]])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    assert "onnxruntime cannot load it" in one_line_error(
        capsys, demo_main, base + ["--backend", "onnxruntime", "--model", str(bad)])
    assert "was exported from a 'rgb+pose' snapshot but --mode is 'rgb_only'" in one_line_error(
        capsys, demo_main, base + ["--backend", "onnxruntime", "--model", files["onnx"],
                                   "--mode", "rgb_only"])


def test_the_script_refuses_a_missing_snapshot_in_one_line(tmp_path):
    """As a user runs it: a script, one line on stderr, no traceback, nothing written."""
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    out = tmp_path / "m.onnx"
    proc = subprocess.run([sys.executable, osp.join(root, "tool", "export.py"), "--ckpt",
                           str(tmp_path / "none.pth.tar"), "--format", "onnx", "--out", str(out)],
                          cwd=root, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: ") and "none.pth.tar" in lines[0]
    assert not out.exists()


def test_onnxruntime_providers_follow_the_device():
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers(cuda, torch.device("cpu")) == ["CPUExecutionProvider"]
    # The GPU asked for, not always GPU 0.
    assert execution_providers(cuda, torch.device("cuda:1")) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert execution_providers(cuda, torch.device("cuda")) == [
        ("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    with pytest.raises(UsageError, match=r"^--device cuda:1: the installed onnxruntime runs "
                                         r"only on CPUExecutionProvider; use --device cpu$"):
        execution_providers(["CPUExecutionProvider"], torch.device("cuda:1"))


def fallback_model() -> torch.nn.Module:
    """rgb+pose with the pose fallback, whose stage classifiers are so sure that most classes'
    probabilities fall on the fallback's floor (1e-12): its logits are log-probabilities."""
    cfg = build_config(dict(mode="rgb+pose", stream_agreement=True, pose_fallback=1.0, **SMALL))
    model = randomised(build_model(cfg, 6, OPENPOSE_18.limbs, OPENPOSE_18.joint_num), seed=1)
    with torch.no_grad():
        for fc in (model.aggregator.agreement.img_fc, model.aggregator.agreement.pose_fc,
                   model.classifier.fc[0]):
            fc.weight.mul_(1e4)
    return model.eval(), cfg


def test_the_check_compares_probabilities_where_logits_are_floored():
    model, cfg = fallback_model()
    floor = float(np.log(1e-12))

    def off_the_floor(inputs):
        # Another engine that lands at 1.5e-12 where PyTorch lands on the floor.
        with torch.no_grad():
            logits = model(inputs)["logits"]
        logits = torch.where(logits <= floor + 1e-3, logits + float(np.log(1.5)), logits)
        return {"logits": logits, "probs": torch.softmax(logits, dim=1)}

    inputs = example_inputs(model, 3, img_hw=(56, 56), people=5,
                            generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        eager = model(inputs)["logits"]
    assert (eager <= floor + 1e-3).any()  # the case the check must not fail on
    worst = compare_with_eager(off_the_floor, model, cfg)
    assert set(worst) == {"probs"} and worst["probs"] < 1e-9

    def wrong(inputs):  # an export that is off by 1e-3 in its probabilities must still fail
        out = off_the_floor(inputs)
        return {"logits": out["logits"], "probs": out["probs"] + 1e-3}

    assert compare_with_eager(wrong, model, cfg)["probs"] == pytest.approx(1e-3, rel=1e-3)


def test_the_check_compares_ordinary_logits_too():
    cfg = build_config(dict(mode="pose_only", **SMALL))
    model = randomised(build_model(cfg, 6, OPENPOSE_18.limbs, OPENPOSE_18.joint_num), seed=1)
    model.eval()

    def shifted(inputs):  # the same probabilities, other logits
        with torch.no_grad():
            logits = model(inputs)["logits"] + 0.5
        return {"logits": logits, "probs": torch.softmax(logits, dim=1)}

    worst = compare_with_eager(shifted, model, cfg)
    assert worst["logits"] == pytest.approx(0.5, abs=1e-5) and worst["probs"] < 1e-6
    nan = compare_with_eager(lambda b: {k: v * float("nan") for k, v in shifted(b).items()},
                             model, cfg)
    assert nan == {"logits": float("inf"), "probs": float("inf")}


def test_a_failed_check_leaves_no_file_at_out(tmp_path, capsys, monkeypatch):
    snap = save_reference_snapshot(str(tmp_path / "pose_only.pth.tar"), "pose_only")
    out = tmp_path / "exports" / "pose_only.pt2"
    monkeypatch.setattr(export_tool, "compare_with_eager", lambda run, model, cfg: {"probs": 0.5})
    err = one_line_error(capsys, export_main, ["--ckpt", snap, "--format", "torch",
                                               "--out", str(out)])
    assert err == (f"error: {out}: its probs differ from PyTorch's by 5.00e-01 (> 0.0001); "
                   "the export is not usable")
    assert not out.exists() and list((tmp_path / "exports").iterdir()) == []  # no temporary
    # The same file, checked and passed, takes the name.
    monkeypatch.setattr(export_tool, "compare_with_eager", lambda run, model, cfg: {"probs": 0.0})
    assert export_main(["--ckpt", snap, "--format", "torch", "--out", str(out)])[
        "check_max_abs_diff"] == 0.0
    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["pose_only.pt2"]
    assert load_torch_export(str(out))[1].mode == "pose_only"


def test_mode_is_given_to_the_config_only_when_on_the_command_line(tmp_path, monkeypatch):
    snap = save_reference_snapshot(str(tmp_path / "pose_only.pth.tar"), "pose_only")
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["mode_given"])
        return inference_config(*args, **kwargs)

    monkeypatch.setattr(export_tool, "inference_config", spy)
    assert build_network(snap, None)["mode"] == "pose_only"
    assert build_network(snap, "pose_only")["mode"] == "pose_only"
    assert seen == [False, True]
