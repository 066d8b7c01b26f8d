"""Same weights, same inputs -> the same probabilities as the authors' computation.

`reference_probs` restates, independently and functionally, what the authors' released code
computes at test time from a snapshot in their layout (`module.` keys): the Gaussian and PAF
rendering with their formulas (the -1 normaliser trick for zero-length limbs), a TSM ResNet
written block by block with the shift done by padding, the aggregator and the classifier. The
project's model, loaded from the same snapshot, must agree to 1e-4.
"""
import torch
import torch.nn.functional as F

from common.train.checkpoint import load_network, save_snapshot, load_snapshot
from common.model import IntegralAction
from data.joint_sets import OPENPOSE_18

HM = (14, 14)


def ref_heatmap(coord, score, sigma=0.5, thr=0.1):
    yy, xx = torch.meshgrid(torch.arange(HM[0]).float(), torch.arange(HM[1]).float(), indexing="ij")
    x = coord[..., 0, None, None]
    y = coord[..., 1, None, None]
    hm = torch.exp(-(((xx - x) / sigma) ** 2) / 2 - (((yy - y) / sigma) ** 2) / 2)
    hm = hm * (score[..., None, None] > thr).float()
    hm = hm.sum(1)
    hm[hm > 1] = 1
    return hm


def ref_paf(coord, score, limbs, paf_sigma=1.0, thr=0.1):
    yy, xx = torch.meshgrid(torch.arange(HM[0]).float(), torch.arange(HM[1]).float(), indexing="ij")
    c0, c1 = coord[:, :, limbs[:, 0], :], coord[:, :, limbs[:, 1], :]
    vec = c1 - c0
    norm = torch.sqrt((vec ** 2).sum(3, keepdim=True))
    norm[norm == 0] = -1
    vec = vec / norm
    vt = torch.stack((vec[..., 1], -vec[..., 0]), 3)
    dist = vec[..., 0, None, None] * (xx - c0[..., 0, None, None]) + vec[..., 1, None, None] * (yy - c0[..., 1, None, None])
    dist_t = torch.abs(vt[..., 0, None, None] * (xx - c0[..., 0, None, None]) + vt[..., 1, None, None] * (yy - c0[..., 1, None, None]))
    mask = (dist >= 0).float() * (dist <= norm[..., 0, None, None]).float() * (dist_t <= paf_sigma).float()
    mask = mask * ((score[:, :, limbs[:, 0], None, None] >= thr) * (score[:, :, limbs[:, 1], None, None] >= thr)).float()
    paf = torch.stack((mask * vec[..., 0, None, None], mask * vec[..., 1, None, None]), 3)
    m = mask.sum(1)
    m[m == 0] = -1
    paf = paf.sum(1) / m[:, :, None]
    return paf.reshape(paf.shape[0], -1, HM[0], HM[1])


def ref_tsm(x, t):
    size = x.shape
    x = x.view((-1, t) + size[1:])
    pre, post, peri = x.split([size[1] // 4, size[1] // 4, size[1] // 2], dim=2)
    pre = F.pad(pre, (0, 0, 0, 0, 0, 0, 1, 0))[:, :-1]
    post = F.pad(post, (0, 0, 0, 0, 0, 0, 0, 1))[:, 1:]
    return torch.cat((pre, post, peri), 2).view(size)


def bn(x, w, p):
    return F.batch_norm(x, w[p + ".running_mean"], w[p + ".running_var"], w[p + ".weight"],
                        w[p + ".bias"], training=False, eps=1e-5)


def ref_resnet18(x, w, p, t, stem):
    if stem:
        x = F.relu(bn(F.conv2d(x, w[p + ".conv1.weight"], stride=2, padding=3), w, p + ".bn1"))
        x = F.max_pool2d(x, 3, 2, 1)
    for layer in range(1, 5):
        for block in range(2):
            q = f"{p}.layer{layer}.{block}"
            stride = 2 if layer > 1 and block == 0 else 1
            out = F.conv2d(ref_tsm(x, t), w[q + ".conv1.weight"], stride=stride, padding=1)
            out = F.relu(bn(out, w, q + ".bn1"))
            out = bn(F.conv2d(out, w[q + ".conv2.weight"], padding=1), w, q + ".bn2")
            if q + ".downsample.0.weight" in w:
                x = bn(F.conv2d(x, w[q + ".downsample.0.weight"], stride=stride), w, q + ".downsample.1")
            x = F.relu(out + x)
    return x


def reference_probs(w, video, coords, scores, mode):
    w = {k[len("module."):]: v for k, v in w.items()}
    b, t = video.shape[:2]
    limbs = torch.tensor(OPENPOSE_18.limbs)
    if mode != "pose_only":
        img = ref_resnet18(video.reshape(b * t, *video.shape[2:]), w, "img_backbone", t, True)
    if mode != "rgb_only":
        c = coords.reshape(b * t, *coords.shape[2:])
        s = scores.reshape(b * t, *scores.shape[2:])
        maps = torch.cat((ref_heatmap(c, s), ref_paf(c, s, limbs)), 1)
        pose = F.relu(bn(F.conv2d(maps, w["pose2feat.conv.0.weight"], w["pose2feat.conv.0.bias"], padding=1), w, "pose2feat.conv.1"))
        pose = ref_resnet18(pose, w, "pose_backbone", t, False)
    if mode == "rgb_only":
        feat = img
    elif mode == "pose_only":
        feat = pose
    else:
        pose = pose.mean((2, 3))[:, :, None, None]
        img = img.mean((2, 3))[:, :, None, None]
        gate = torch.sigmoid(F.linear(torch.squeeze(pose), w["aggregator.pose_gate_fc.0.weight"], w["aggregator.pose_gate_fc.0.bias"]))[:, :, None, None]

        def proj(x, name):
            x = F.conv2d(x, w[f"aggregator.{name}_conv.0.weight"], w[f"aggregator.{name}_conv.0.bias"])
            x = F.relu(bn(x, w, f"aggregator.{name}_conv.1"))
            return F.layer_norm(x, [512, 1, 1], w[f"aggregator.{name}_norm.weight"], w[f"aggregator.{name}_norm.bias"])

        feat = proj(pose, "pose") * gate + proj(img, "img") * (1 - gate)
    logits = F.linear(feat.mean((2, 3)), w["classifier.fc.0.weight"], w["classifier.fc.0.bias"])
    return F.softmax(logits.view(b, t, -1).mean(1), 1)


def randomised(model, seed):
    """Non-trivial weights and BN statistics, as a trained snapshot would have."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
                elif name.endswith(("running_mean", "bias")):
                    tensor.copy_(0.1 * torch.randn(tensor.shape, generator=g))
                elif name.endswith("weight") and tensor.dim() == 1 or "norm" in name:
                    tensor.copy_(1 + 0.1 * torch.randn(tensor.shape, generator=g))
                else:
                    fan_in = tensor[0].numel()
                    tensor.copy_(torch.randn(tensor.shape, generator=g) * (2.0 / fan_in) ** 0.5)
    return model


def test_probabilities_match_the_reference_computation(tmp_path):
    g = torch.Generator().manual_seed(0)
    b, t = 2, 4
    video = torch.rand(b, t, 3, 56, 56, generator=g)
    coords = torch.rand(b, t, 5, 18, 2, generator=g) * 14
    coords[0, :, 1, 3] = coords[0, :, 1, 2]  # a zero-length limb (R_Shoulder -> R_Elbow)
    scores = torch.rand(b, t, 5, 18, generator=g)
    scores[:, :, 3:] = 0  # padded people
    inputs = {"video": video, "pose_coords": coords, "pose_scores": scores}
    for mode in ("rgb_only", "pose_only", "rgb+pose"):
        source = randomised(IntegralAction(mode, 6, OPENPOSE_18.limbs, 18, frame_per_seg=t,
                                           input_hm_shape=HM), seed=1)
        path = str(tmp_path / f"{mode}.pth.tar")
        save_snapshot(path, source, None, 29, mode)
        snap = load_snapshot(path)
        model = IntegralAction(mode, 6, OPENPOSE_18.limbs, 18, frame_per_seg=t, input_hm_shape=HM)
        load_network(model, snap["network"])
        model.eval()
        with torch.no_grad():
            ours = torch.softmax(model(inputs)["logits"], 1)
            ref = reference_probs(snap["network"], video, coords, scores, mode)
        assert ref.shape == (b, 6)
        assert torch.max(torch.abs(ours - ref)) < 1e-4, mode
        assert torch.max(torch.abs(ref - 1 / 6)) > 1e-3  # the check is not between two uniforms
