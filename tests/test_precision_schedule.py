"""Mixed precision on the CPU, the precision defaults per device, and the learning-rate schedules."""
import math

import pytest
import torch

from common.train.engine import optimizer_step, step_losses
from common.model import build_model
from common.runtime.precision import Precision, apply_precision, make_grad_scaler, resolve_precision
from common.train.schedule import LRSchedule, learning_rate
from data.joint_sets import OPENPOSE_18
from main.config import build_config


def small_model(mode="rgb+pose"):
    cfg = build_config({"mode": mode, "input_hm_shape": (8, 8), "input_img_shape": (32, 32),
                        "frame_per_seg": 2, "frame_interval": 2, "dropout": 0.0})
    torch.manual_seed(0)
    model = build_model(cfg, 5, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.init_weights("none")
    return model.eval()


def fixed_input():
    g = torch.Generator().manual_seed(1)
    return {"video": torch.rand(2, 2, 3, 32, 32, generator=g),
            "pose_coords": torch.rand(2, 2, 5, 18, 2, generator=g) * 8,
            "pose_scores": torch.rand(2, 2, 5, 18, generator=g)}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_forward_on_cpu_stays_close_to_fp32(amp):
    model, inputs = small_model(), fixed_input()
    with torch.no_grad():
        ref = model(inputs)
        with Precision(amp=amp, device_type="cpu").autocast():
            low = model(inputs)
    assert low["logits"].dtype == (torch.bfloat16 if amp == "bf16" else torch.float16)
    scale = ref["logits"].abs().max()
    # bf16 keeps 8 bits of mantissa: a few parts in a thousand of the logits' scale.
    err = (low["logits"].float() - ref["logits"]).abs().max()
    assert 0 < err < 0.02 * scale
    probs = torch.softmax(ref["logits"], 1), torch.softmax(low["logits"].float(), 1)
    assert torch.allclose(*probs, atol=1e-3)
    assert torch.allclose(low["gate"].float(), ref["gate"], atol=2e-2)


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_train_step_functions_give_fp32_losses_and_one_update(amp):
    # train.py's step: the forward in the run's precision, the losses in fp32, one update
    # (through the gradient scaler for fp16).
    precision = Precision(amp=amp, device_type="cpu")
    model = small_model("rgb_only").train()
    batch = dict(fixed_input(), label=torch.tensor([1, 3]))
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.1)
    scaler = make_grad_scaler(precision)
    assert scaler.is_enabled() == (amp == "fp16")
    losses = step_losses(model, batch, reg_weight=1.0, precision=precision)
    assert set(losses) == {"action_cls"} and losses["action_cls"].dtype == torch.float32
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(
            small_model("rgb_only").train()(batch)["logits"], batch["label"])
    tolerance = 1e-6 if amp == "off" else 5e-2
    loss = float(losses["action_cls"].detach())
    assert abs(loss - float(ref)) <= tolerance * max(1.0, float(ref))
    before = [p.detach().clone() for p in model.trainable_parameters()]
    optimizer_step(sum(losses.values()), optimizer, scaler)
    moved = [not torch.equal(b, p) for b, p in zip(before, model.trainable_parameters())]
    assert any(moved)
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.trainable_parameters())


def test_channels_last_gives_the_same_outputs():
    model, inputs = small_model(), fixed_input()
    with torch.no_grad():
        ref = model(inputs)["logits"]
        nhwc = apply_precision(model, Precision(channels_last=True))(inputs)["logits"]
    assert model.img_backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(ref, nhwc, atol=1e-5)


def test_precision_defaults_per_device():
    cfg = build_config({"mode": "rgb_only"})
    cpu = resolve_precision(cfg, torch.device("cpu"), training=True)
    assert cpu == Precision(amp="off", channels_last=False, cudnn_benchmark=False)
    assert not make_grad_scaler(cpu).is_enabled()
    # Evaluation: fp32, NHWC on the CPU too (oneDNN's native layout); asked-for NCHW is kept.
    cpu_eval = resolve_precision(cfg, torch.device("cpu"), training=False)
    assert cpu_eval == Precision(amp="off", channels_last=True, cudnn_benchmark=False)
    assert not resolve_precision(build_config({"mode": "rgb_only", "channels_last": False}),
                                 torch.device("cpu"), training=False).channels_last
    asked = resolve_precision(build_config({"mode": "rgb_only", "amp": "fp16",
                                            "channels_last": True}),
                              torch.device("cpu"), training=True)
    assert asked.amp == "fp16" and asked.channels_last and asked.uses_scaler
    assert make_grad_scaler(asked).is_enabled()
    # cuDNN autotuning only means something on a GPU.
    assert not resolve_precision(build_config({"mode": "rgb_only", "cudnn_benchmark": True}),
                                 torch.device("cpu"), training=True).cudnn_benchmark


def test_step_schedule_is_the_originals():
    cfg = build_config({"mode": "rgb_only"})
    schedule = LRSchedule.from_config(cfg, first_epoch=0)
    for epoch in range(30):
        for itr in (0, 17):
            assert schedule(epoch, itr, 100) == learning_rate(cfg.lr, epoch, (21, 26), 10.0)
    assert schedule(20, 99, 100) == cfg.lr and schedule(21, 0, 100) == pytest.approx(cfg.lr / 10)


def test_cosine_with_warmup():
    s = LRSchedule(base_lr=0.1, kind="cosine", min_lr=0.001, warmup_epochs=1, warmup_factor=0.1,
                   first_epoch=1, end_epoch=5)
    per = 10
    assert s(1, 0, per) == pytest.approx(0.1 * 0.1)  # the warm-up's start
    assert s(1, 5, per) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert s(2, 0, per) == pytest.approx(0.1)  # warm-up done: the cosine's start
    # Halfway through the 3 cosine epochs: the mean of the two ends.
    assert s(3, 5, per) == pytest.approx((0.1 + 0.001) / 2)
    assert s(4, 9, per) == pytest.approx(0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * 29 / 30)))
    values = [s(e, i, per) for e in range(2, 5) for i in range(per)]
    assert all(a > b for a, b in zip(values, values[1:]))  # decreasing after the warm-up


def test_warmup_on_the_step_schedule():
    s = LRSchedule(base_lr=0.01, kind="step", dec_epochs=(2,), warmup_epochs=0.5,
                   warmup_factor=0.01)
    assert s(0, 0, 4) == pytest.approx(1e-4)
    assert s(0, 1, 4) == pytest.approx(0.01 * (0.01 + 0.99 * 0.5))
    assert s(0, 2, 4) == s(1, 3, 4) == 0.01 and s(2, 0, 4) == pytest.approx(0.001)


def test_schedule_options_are_checked():
    from common.errors import UsageError
    with pytest.raises(UsageError, match="warmup"):
        build_config({"mode": "rgb_only", "warmup_epochs": -1.0})
    with pytest.raises(ValueError):
        LRSchedule(base_lr=0.1, kind="linear")
