"""The evaluation copy of a model: BatchNorm folded into the convolutions, same outputs."""
import pytest
import torch
from torch import nn

from common.inference import fold_batchnorm, optimize_for_inference
from common.model import build_model
from common.precision import Precision
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
