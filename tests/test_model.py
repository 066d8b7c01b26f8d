"""The network: TSM shift, stream layout, gate, stage freezing, dropout, paper-shape forward."""
import math

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from common.train.engine import make_optimizer
from common.errors import CheckpointError
from common.model import IntegralAction
from common.nets.fusion import Aggregator, Classifier, GateOptions
from common.nets.tsm_resnet import TemporalShiftConv2d, TSMResNet, temporal_shift
from data.joint_sets import NTU_25, OPENPOSE_18


def tiny_model(mode, **kw):
    torch.manual_seed(0)
    model = IntegralAction(mode, 5, OPENPOSE_18.limbs, 18, frame_per_seg=4,
                           input_hm_shape=(8, 8), **kw)
    model.init_weights("none")
    return model


def tiny_inputs(b=2, t=4, tp=None, size=32, hm=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    tp = tp or t
    return {
        "video": torch.rand(b, t, 3, size, size, generator=g),
        "pose_coords": torch.rand(b, tp, 5, 18, 2, generator=g) * hm,
        "pose_scores": torch.rand(b, tp, 5, 18, generator=g),
        "label": torch.tensor([1, 3])[:b],
    }


def test_temporal_shift_hand_made():
    # 1 clip, 3 frames, 8 channels: value = 10 * frame + channel.
    x = torch.tensor([[10.0 * t + c for c in range(8)] for t in range(3)]).view(3, 8, 1, 1)
    out = temporal_shift(x, 3).view(3, 8)
    expected = torch.tensor([
        [0, 0, 12, 13, 4, 5, 6, 7],      # channels 0-1 from frame -1 (zeros), 2-3 from frame 1
        [0, 1, 22, 23, 14, 15, 16, 17],  # 0-1 from frame 0, 2-3 from frame 2
        [10, 11, 0, 0, 24, 25, 26, 27],  # 0-1 from frame 1, 2-3 from frame 3 (zeros)
    ], dtype=torch.float32)
    assert torch.equal(out, expected)


def test_temporal_shift_keeps_clips_apart():
    x = torch.arange(2 * 2 * 4, dtype=torch.float32).view(4, 4, 1, 1)  # 2 clips of 2 frames
    out = temporal_shift(x, 2).view(4, 4)
    assert out[2, 0] == 0  # first frame of clip 2 gets nothing from the last frame of clip 1
    assert out[1, 1] == 0  # last frame of clip 1 gets nothing from clip 2


@pytest.mark.parametrize("channels, frames, clips", [(8, 3, 2), (6, 4, 1), (13, 2, 3), (3, 5, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_temporal_shift_matches_a_frame_by_frame_reference(channels, frames, clips,
                                                           channels_last):
    # The shift writes into uninitialised memory: every element must be set, in either layout,
    # also when C is not a multiple of 4 (the unshifted rest is then more than half).
    g = torch.Generator().manual_seed(channels * 100 + frames)
    x = torch.randn(clips * frames, channels, 3, 4, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    fold = channels // 4
    expected = torch.zeros(clips, frames, channels, 3, 4)
    clip_view = x.reshape(clips, frames, channels, 3, 4)
    for t in range(frames):
        if t > 0:
            expected[:, t, :fold] = clip_view[:, t - 1, :fold]
        if t < frames - 1:
            expected[:, t, fold:2 * fold] = clip_view[:, t + 1, fold:2 * fold]
        expected[:, t, 2 * fold:] = clip_view[:, t, 2 * fold:]
    for _ in range(3):  # new allocations each time, whatever memory they reuse
        assert torch.equal(temporal_shift(x, frames), expected.view_as(x))


def test_tsm_resnet_keeps_torchvision_names_and_shifts_residual_only():
    net = TSMResNet(18, num_frames=2)
    names = set(net.state_dict())
    tv = {k for k in resnet18().state_dict() if not k.startswith("fc.")}
    assert names == tv
    block = net.layer1[0]
    assert isinstance(block.conv1, TemporalShiftConv2d)
    assert not isinstance(block.conv2, TemporalShiftConv2d)
    # Shortcut not shifted: with a zeroed residual branch a block is ReLU(identity).
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(4, 64, 5, 5)
    block.eval()
    assert torch.allclose(block(x), torch.relu(x))


@pytest.mark.parametrize("depth", [18, 50])
def test_tsm_resnet_from_scratch_blocks_start_as_identity(depth):
    torch.manual_seed(0)
    net = TSMResNet(depth, num_frames=2).eval()
    last_bns = [block.bn3 if depth == 50 else block.bn2
                for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for block in layer]
    assert all(torch.count_nonzero(bn.weight) == 0 for bn in last_bns)
    # A block without a downsampling shortcut is then exactly ReLU(input) (inputs >= 0 here, as
    # after the previous block's ReLU).
    block = net.layer2[1]
    x = torch.rand(2, block.conv1.in_channels, 5, 5)
    assert torch.equal(block(x), x)


def test_tsm_resnet_loads_local_imagenet_file(tmp_path):
    torch.manual_seed(1)
    ref = resnet18()
    nn.init.uniform_(ref.layer2[0].bn2.weight)  # torchvision's own init has these at 1
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    net = TSMResNet(18, num_frames=2)
    assert net.load_imagenet(str(path))
    assert torch.equal(net.layer3[1].conv1.weight, ref.layer3[1].conv1.weight)
    # Loaded weights replace the from-scratch zero init of the last BN of each block.
    assert torch.equal(net.layer2[0].bn2.weight, ref.layer2[0].bn2.weight)
    with pytest.raises(CheckpointError, match="missing.pth: no such file"):
        net.load_imagenet(str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("mode", ["rgb_only", "pose_only", "rgb+pose"])
def test_forward_modes(mode):
    model = tiny_model(mode)
    out = model(tiny_inputs())
    assert out["logits"].shape == (2, 5)
    if mode == "rgb+pose":
        gate = out["gate"]
        assert gate.shape == (2 * 4, 512)
        assert torch.all(gate > 0) and torch.all(gate < 1)
    else:
        assert out["gate"] is None
    # Classifier input widths: stream width in single-stream modes, 512 in rgb+pose.
    assert model.classifier.fc[0].weight.shape == (5, 512)


def test_resnet50_classifier_width_per_mode():
    assert IntegralAction("rgb_only", 3, OPENPOSE_18.limbs, 18, img_resnet_type=50
                          ).classifier.fc[0].in_features == 2048
    assert IntegralAction("rgb+pose", 3, OPENPOSE_18.limbs, 18, img_resnet_type=50
                          ).classifier.fc[0].in_features == 512


def test_pose_only_does_not_need_video():
    model = tiny_model("pose_only").eval()
    inputs = tiny_inputs()
    del inputs["video"]
    assert model(inputs)["logits"].shape == (2, 5)


def test_gate_with_a_single_frame_keeps_batch_dim():
    # The original's torch.squeeze turned a (1, 512, 1, 1) feature into (512,).
    agg = Aggregator(512, 512, out_dim=512, frame_per_seg=1).eval()
    feat, gate = agg(torch.randn(1, 512, 2, 2), torch.randn(1, 512, 2, 2))
    assert gate.shape == (1, 512)
    assert feat.shape == (1, 512, 1, 1)


def test_gate_mixes_the_streams():
    agg = Aggregator(8, 8, out_dim=8, frame_per_seg=1).eval()
    with torch.no_grad():
        agg.pose_gate_fc[0].weight.zero_()
        agg.pose_gate_fc[0].bias.fill_(100.0)  # gate ~ 1: pose only
    img, pose = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    feat, gate = agg(img, pose)
    pose_only = agg.pose_norm(agg.pose_conv(pose.mean((2, 3), keepdim=True)))
    assert torch.allclose(feat, pose_only, atol=1e-6)
    with torch.no_grad():
        agg.pose_gate_fc[0].bias.fill_(0.0)  # gate = 0.5
    feat, gate = agg(img, pose)
    img_only = agg.img_norm(agg.img_conv(img.mean((2, 3), keepdim=True)))
    assert torch.allclose(gate, torch.full_like(gate, 0.5))
    assert torch.allclose(feat, 0.5 * pose_only + 0.5 * img_only, atol=1e-6)


def test_no_gate_ablation():
    agg = Aggregator(8, 8, out_dim=8, frame_per_seg=1, gate=GateOptions(enabled=False)).eval()
    img, pose = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    feat, gate = agg(img, pose)
    assert gate is None
    expected = agg.pose_conv(pose.mean((2, 3), keepdim=True)) + agg.img_conv(img.mean((2, 3), keepdim=True))
    assert torch.allclose(feat, expected)


def test_pose_frame_factor_runs_more_pose_frames():
    model = tiny_model("rgb+pose", pose_frame_factor=2)
    assert model.pose_frame_num == 7
    assert model.pose_backbone.layer1[0].conv1.num_frames == 7
    out = model(tiny_inputs(t=4, tp=7))
    assert out["gate"].shape == (2 * 4, 512)
    # The temporal conv brings 7 pose frames back to 4.
    seq = torch.randn(1, 512, 7, 1, 1)
    assert model.aggregator.pose_temporal_conv(seq).shape == (1, 512, 4, 1, 1)


def test_classifier_uses_dropout():
    # The original computed dropout and classified the un-dropped feature.
    torch.manual_seed(0)
    cls = Classifier(64, 3, dropout=0.5)
    feat = torch.ones(4, 64, 1, 1)
    cls.train()
    train_out = cls(feat)
    cls.eval()
    eval_out = cls(feat)
    assert not torch.allclose(train_out, eval_out)
    cls.dropout.p = 0.0
    cls.train()
    assert torch.allclose(cls(feat), eval_out)


def test_fusion_stage_trains_only_aggregator_and_classifier():
    model = tiny_model("rgb+pose")
    model.freeze_for_stage()
    optimizer = make_optimizer(model, type("C", (), dict(lr=0.1, momentum=0.9, weight_decay=1e-4))())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    expected = {id(p) for p in model.aggregator.parameters()} | {id(p) for p in model.classifier.parameters()}
    assert in_optimizer == expected
    # The frozen streams compute no gradients (the original wasted time and memory on them).
    out = model(tiny_inputs())
    out["logits"].sum().backward()
    assert all(p.grad is None for p in model.img_backbone.parameters())
    assert all(p.grad is None for p in model.pose2feat.parameters())
    assert model.classifier.fc[0].weight.grad is not None
    assert model.aggregator.pose_gate_fc[0].weight.grad is not None


def test_head_initialisation():
    model = tiny_model("rgb+pose")
    w = model.pose2feat.conv[0].weight
    assert 0.0005 < w.std().item() < 0.002 and torch.all(model.pose2feat.conv[0].bias == 0)
    lw = model.classifier.fc[0].weight
    assert 0.005 < lw.std().item() < 0.02
    assert torch.all(model.aggregator.img_conv[1].weight == 1)
    gate = model.aggregator.pose_gate_fc[0].weight
    assert 0.005 < gate.std().item() < 0.02


def test_hidden_gate_gets_default_initialisation():
    torch.manual_seed(0)
    model = IntegralAction("rgb+pose", 5, OPENPOSE_18.limbs, 18, frame_per_seg=2,
                           input_hm_shape=(8, 8),
                           gate=GateOptions(input="pose+rgb", hidden=64))
    model.init_weights("none")
    first, second = model.aggregator.pose_gate_fc[0], model.aggregator.pose_gate_fc[2]
    # Kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std = bound/sqrt(3).
    for layer, fan_in in ((first, 1024), (second, 64)):
        expected = 1 / math.sqrt(fan_in) / math.sqrt(3)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert layer.weight.abs().max().item() <= 1 / math.sqrt(fan_in)
    # The rest of the head keeps the original's initialisation.
    assert 0.005 < model.classifier.fc[0].weight.std().item() < 0.02


def test_ntu_pose_channels():
    model = IntegralAction("pose_only", 60, NTU_25.limbs, 25, frame_per_seg=2, input_hm_shape=(8, 8))
    assert model.pose2feat.conv[0].weight.shape == (64, 73, 3, 3)


def test_paper_shapes_forward():
    """One forward pass at the paper's shapes: 8 x 224 x 224 RGB, 56 x 56 pose maps, ResNet-18."""
    torch.manual_seed(0)
    model = IntegralAction("rgb+pose", 50, OPENPOSE_18.limbs, 18).eval()
    g = torch.Generator().manual_seed(0)
    inputs = {
        "video": torch.rand(1, 8, 3, 224, 224, generator=g),
        "pose_coords": torch.rand(1, 8, 5, 18, 2, generator=g) * 56,
        "pose_scores": torch.rand(1, 8, 5, 18, generator=g),
    }
    maps = model.render_pose(inputs["pose_coords"], inputs["pose_scores"])
    assert maps.shape == (8, 52, 56, 56)
    with torch.no_grad():
        feat = model.img_backbone(inputs["video"].view(8, 3, 224, 224))
        assert feat.shape == (8, 512, 7, 7)
        assert model.pose_backbone(model.pose2feat(maps)).shape == (8, 512, 7, 7)
        out = model(inputs)
    probs = torch.softmax(out["logits"], 1)
    assert out["logits"].shape == (1, 50) and torch.isclose(probs.sum(), torch.tensor(1.0))
    assert out["gate"].shape == (8, 512)


def test_gate_that_also_sees_rgb():
    torch.manual_seed(0)
    agg = Aggregator(8, 8, out_dim=8, frame_per_seg=1, gate=GateOptions(input="pose+rgb")).eval()
    assert agg.pose_gate_fc[0].weight.shape == (8, 16)
    pose = torch.randn(2, 8, 3, 3)
    _, gate_a = agg(torch.randn(2, 8, 3, 3), pose)
    _, gate_b = agg(torch.randn(2, 8, 3, 3), pose)
    assert not torch.allclose(gate_a, gate_b)  # the paper's gate would not move
    paper = Aggregator(8, 8, out_dim=8, frame_per_seg=1).eval()
    _, paper_a = paper(torch.randn(2, 8, 3, 3), pose)
    _, paper_b = paper(torch.randn(2, 8, 3, 3), pose)
    assert torch.equal(paper_a, paper_b)
    with pytest.raises(ValueError):
        Aggregator(8, 8, out_dim=8, gate=GateOptions(input="rgb"))


def test_gate_with_hidden_layer_can_compute_agreement():
    # gate = sigmoid(w2 . relu(W1 [p; r])): with W1 = [[1, -1], [-1, 1]] (per channel pair) the
    # hidden layer is |p - r|, which no single Linear layer over [p; r] can produce. Set by hand:
    # the gate is high exactly where the two (pooled) features disagree.
    agg = Aggregator(1, 1, out_dim=1, frame_per_seg=1,
                     gate=GateOptions(input="pose+rgb", hidden=2)).eval()
    assert [type(m) for m in agg.pose_gate_fc] == [nn.Linear, nn.ReLU, nn.Linear]
    with torch.no_grad():
        agg.pose_gate_fc[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        agg.pose_gate_fc[0].bias.zero_()
        agg.pose_gate_fc[2].weight.fill_(4.0)
        agg.pose_gate_fc[2].bias.fill_(-2.0)
    feats = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # (pose, rgb)
    _, gate = agg(feats[:, 1].view(4, 1, 1, 1), feats[:, 0].view(4, 1, 1, 1))
    expected = torch.sigmoid(4.0 * (feats[:, 0] - feats[:, 1]).abs() - 2.0)
    torch.testing.assert_close(gate.view(4), expected)
    assert gate[2] > 0.8 and gate[3] > 0.8 and gate[0] < 0.2 and gate[1] < 0.2


def test_stream_agreement_is_the_probability_both_streams_name_the_same_class():
    from common.nets.fusion import StreamAgreement
    agreement = StreamAgreement(3, 3, 3)
    with torch.no_grad():
        for fc in (agreement.img_fc, agreement.pose_fc):
            fc.weight.copy_(torch.eye(3))  # logits = the mean frame feature
            fc.bias.zero_()
    # Clip 0: both streams see the same logits; clip 1: they point at different classes.
    img = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[9.0, 0.0, 0.0], [9.0, 0.0, 0.0]]])
    pose = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 0.0, 9.0]]])
    a = agreement(img, pose)  # (B, T, C) and (B, Tp, C) frame features
    p = torch.softmax(torch.tensor([1.0, 0.0, 0.0]), 0)
    assert torch.allclose(a[0], (p * p).sum())
    p_img, p_pose = torch.softmax(torch.tensor([9.0, 0, 0]), 0), torch.softmax(torch.tensor([0, 0, 9.0]), 0)
    assert torch.allclose(a[1], (p_img * p_pose).sum())
    assert a[1] < 1e-3 < 0.3 < a[0]


def test_aggregator_scales_the_rgb_term_by_the_agreement():
    torch.manual_seed(0)
    agg = Aggregator(4, 4, out_dim=6, frame_per_seg=2, agreement_classes=3).eval()
    img, pose = torch.randn(4, 4, 2, 2), torch.randn(4, 4, 2, 2)  # B = 2 clips of T = 2 frames
    with torch.no_grad():
        agg.pose_gate_fc[0].weight.zero_()  # gate = 0.5 everywhere
        agg.pose_gate_fc[0].bias.zero_()
    a = agg.agreement(img.mean((2, 3)).view(2, 2, 4), pose.mean((2, 3)).view(2, 2, 4))
    feat, _ = agg(img, pose)
    pose_out = agg.pose_norm(agg.pose_conv(pose.mean((2, 3), keepdim=True)))
    img_out = agg.img_norm(agg.img_conv(img.mean((2, 3), keepdim=True)))
    per_frame = a.repeat_interleave(2).view(4, 1, 1, 1)
    assert torch.allclose(feat, 0.5 * pose_out + 0.5 * per_frame * img_out, atol=1e-6)
    # Streams that cannot agree silence the scene: only the pose term is left.
    with torch.no_grad():
        agg.agreement.img_fc.weight.zero_()
        agg.agreement.img_fc.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))
        agg.agreement.pose_fc.weight.zero_()
        agg.agreement.pose_fc.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))
    feat, _ = agg(img, pose)
    assert torch.allclose(feat, 0.5 * pose_out, atol=1e-6)


def test_stream_agreement_heads_stay_frozen_in_the_fusion_stage():
    model = tiny_model("rgb+pose", stream_agreement=True)
    assert model.aggregator.agreement.img_fc.out_features == 5
    model.freeze_for_stage()
    optimizer = make_optimizer(model, type("C", (), dict(lr=0.1, momentum=0.9, weight_decay=1e-4))())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    heads = {id(p) for p in model.aggregator.agreement.parameters()}
    assert heads and not heads & in_optimizer
    assert {id(p) for p in model.aggregator.img_conv.parameters()} <= in_optimizer
    model(tiny_inputs())["logits"].sum().backward()
    assert all(p.grad is None for p in model.aggregator.agreement.parameters())
    assert model.aggregator.img_conv[0].weight.grad is not None
