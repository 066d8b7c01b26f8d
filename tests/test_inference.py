"""The evaluation copy of a model: BatchNorm folded into the convolutions, same outputs."""
import pytest
import torch
from torch import nn

from common.train.inference import (ClipChunks, eval_chunk_clips, fold_batchnorm,
                              optimize_for_inference)
from common.model import build_model
from common.runtime.precision import Precision
from data.joint_sets import OPENPOSE_18
from main.config import build_config


def trained_looking_model(mode):
    cfg = build_config({"mode": mode, "input_hm_shape": (8, 8), "input_img_shape": (32, 32),
                        "frame_per_seg": 2, "frame_interval": 2})
    torch.manual_seed(0)
    model = build_model(cfg, 4, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.init_weights("none")
    # BatchNorm statistics and affine parameters away from their initial (identity) values.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("mode", ["rgb_only", "pose_only", "rgb+pose"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_model_gives_the_same_outputs(mode, channels_last):
    model = trained_looking_model(mode)
    g = torch.Generator().manual_seed(1)
    inputs = {"video": torch.rand(2, 2, 3, 32, 32, generator=g),
              "pose_coords": torch.rand(2, 2, 5, 18, 2, generator=g) * 8,
              "pose_scores": torch.rand(2, 2, 5, 18, generator=g)}
    batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    fast, folded = optimize_for_inference(model, Precision(channels_last=channels_last))
    assert folded == batchnorms and batchnorms > 40
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    # The original is untouched (the snapshot's weights, BatchNorm included).
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batchnorms
    with torch.inference_mode():
        ref, out = model(inputs), fast(inputs)
    assert torch.allclose(ref["logits"], out["logits"], atol=1e-5, rtol=1e-5)
    if mode == "rgb+pose":
        assert torch.allclose(ref["gate"], out["gate"], atol=1e-5)


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(trained_looking_model("rgb_only").train())


@pytest.mark.parametrize("mode", ["rgb_only", "pose_only", "rgb+pose"])
@pytest.mark.parametrize("clips", [1, 2, 3, 5])
def test_clip_chunks_give_the_whole_batch_outputs(mode, clips):
    # 5 clips evaluated whole and `clips` at a time (5 = 2 + 2 + 1 with 2: a short last chunk).
    model = trained_looking_model(mode)
    g = torch.Generator().manual_seed(2)
    inputs = {"video": torch.rand(5, 2, 3, 32, 32, generator=g),
              "pose_coords": torch.rand(5, 2, 5, 18, 2, generator=g) * 8,
              "pose_scores": torch.rand(5, 2, 5, 18, generator=g),
              "label": torch.arange(5), "problems": []}  # as a batch holds them
    fast, _ = optimize_for_inference(model, Precision(channels_last=True), chunk_clips=clips)
    assert isinstance(fast, ClipChunks) and fast.clips == clips
    with torch.inference_mode():
        whole = model(inputs)
        chunked = fast(inputs)
    assert set(chunked) == set(whole)
    for key, value in whole.items():
        if value is None:
            assert chunked[key] is None
        else:
            assert chunked[key].shape == value.shape
            assert torch.allclose(chunked[key], value, atol=1e-5, rtol=1e-5), key


def test_eval_chunk_clips_defaults_per_device():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert eval_chunk_clips(None, 8, cpu) == 2       # 16 frames of 8-frame clips
    assert eval_chunk_clips(None, 4, cpu) == 4
    assert eval_chunk_clips(None, 32, cpu) == 1      # at least one clip
    assert eval_chunk_clips(None, 8, gpu) is None    # a GPU takes the batch whole
    assert eval_chunk_clips(0, 8, cpu) is None       # 0: the whole batch, asked for
    assert eval_chunk_clips(40, 8, gpu) == 5         # asked for: on any device
    with pytest.raises(ValueError):
        ClipChunks(torch.nn.Identity(), 0)
