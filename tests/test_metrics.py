"""Metrics and the training-loop helpers."""
import numpy as np
import torch

from common.train.context_aug import person_box_mask, swap_context
from common.runtime.device import parse_gpu_ids, select_device
from common.train.schedule import learning_rate
from common.report.metrics import average_clip_probs, results_dict, topk_accuracy


def test_average_clip_probs_groups_by_video():
    ids = [7, 7, 3, 3, 3]
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    vids, mean, labels = average_clip_probs(ids, probs, [1, 1, 0, 0, 0])
    assert vids.tolist() == [7, 3]
    assert np.allclose(mean, [[0.4, 0.6], [0.5, 0.5]])
    assert labels.tolist() == [1, 0]
    out = results_dict(vids, mean)
    assert list(out) == ["7", "3"] and np.allclose(out["7"], [0.4, 0.6]) and out["3"] == [0.5, 0.5]


def test_topk_accuracy():
    probs = np.array([[0.1, 0.2, 0.3, 0.4, 0.0, 0.0],
                      [0.5, 0.1, 0.1, 0.1, 0.1, 0.1],
                      [0.0, 0.1, 0.2, 0.3, 0.35, 0.05]])
    labels = np.array([3, 2, 0])
    assert np.isclose(topk_accuracy(probs, labels, 1), 100 / 3)
    assert np.isclose(topk_accuracy(probs, labels, 5), 200 / 3)  # label 0 is 6th in row 3
    assert topk_accuracy(probs[:, :3], np.array([0, 0, 0]), 5) == 100.0


def test_learning_rate_schedule():
    lrs = [learning_rate(5e-3, e, (21, 26), 10) for e in range(30)]
    assert lrs[0] == lrs[20] == 5e-3
    assert np.isclose(lrs[21], 5e-4) and np.isclose(lrs[25], 5e-4)
    assert np.isclose(lrs[26], 5e-5) and np.isclose(lrs[29], 5e-5)


def test_gpu_ids():
    assert parse_gpu_ids("0-3") == [0, 1, 2, 3]
    assert parse_gpu_ids("0,2") == [0, 2]
    assert parse_gpu_ids(None) == []
    if not torch.cuda.is_available():
        assert select_device(None) == (torch.device("cpu"), [])


def test_person_box_mask_and_context_swap():
    coords = torch.zeros(2, 1, 1, 2, 2)
    coords[0, 0, 0] = torch.tensor([[2.0, 2.0], [4.0, 6.0]])  # box x 2..4, y 2..6 on an 8x8 grid
    coords[1, 0, 0] = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    scores = torch.ones(2, 1, 1, 2)
    scores[1] = 0  # nobody visible in clip 1
    mask = person_box_mask(coords, scores, (16, 16), (8, 8), margin=0.0)
    assert mask.shape == (2, 1, 1, 16, 16)
    # Grid x 2..4 -> pixels 4..8 (+0.64 px slack), y 2..6 -> 4..12.
    assert mask[0, 0, 0, 4:13, 4:9].all() and mask[0, 0, 0].sum() == 9 * 5
    assert mask[1].sum() == 0
    video = torch.stack([torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)])
    g = torch.Generator().manual_seed(0)
    out, source = swap_context(video, coords, scores, hm_shape=(8, 8), prob=1.0, margin=0.0,
                               generator=g)
    # Clip 0 keeps its person box, gets clip 1's pixels elsewhere; clip 1 has no person.
    assert out[0, 0, 0, 5, 5] == 0 and out[0, 0, 0, 0, 0] == 1
    assert torch.all(out[1] == 0)
    assert source.tolist() == [1, 0]
    same, source = swap_context(video, coords, scores, hm_shape=(8, 8), prob=0.0)
    assert torch.equal(same, video) and source.tolist() == [0, 1]
    # With p = 0.5 some clips are left alone and say so.
    video4 = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 1, 3, 16, 16)
    coords4, scores4 = coords[:1].expand(4, -1, -1, -1, -1), scores[:1].expand(4, -1, -1, -1)
    g = torch.Generator().manual_seed(1)  # draws clips 1 and 2
    out, source = swap_context(video4, coords4, scores4, hm_shape=(8, 8), prob=0.5, margin=0.0,
                               generator=g)
    for i in range(4):  # outside the box every clip shows the clip `source` names
        assert out[i, 0, 0, 0, 0] == source[i]
    assert (source != torch.arange(4)).tolist() == [False, True, True, False]
