"""2D poses of every person in video frames, from torchvision's Keypoint R-CNN (COCO-17).

The estimator returns COCO-17 keypoints (`data.coco_to_openpose` turns them into the project's
OpenPose-18). Weights come from torchvision's weights API
(`KeypointRCNN_ResNet50_FPN_Weights.COCO_V1`, downloaded once into the torch hub cache) or from
a local copy of that file; when neither can be had, `load_keypoint_rcnn` stops with one line that
names both ways. `weights=None` builds a randomly initialised model (tests: no download).

Joint confidence. Keypoint R-CNN scores a keypoint with the logit of its heatmap peak (the input
of a spatial softmax; unbounded), not a probability, while the project's poses (OpenPose) carry
confidences in [0, 1] that the pose maps threshold at `pose_score_thr` (0.1). A joint's score is
`person score * sigmoid(logit - 2)`: 2 is the logit at which Detectron, where this model comes
from, starts drawing a keypoint, so a joint there counts one half; a weak detection weakens all
of its joints, as Mimetics' `joint score x person score` does.
"""
from __future__ import annotations

import contextlib
import io
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from common.errors import UsageError

WEIGHTS_NAME = "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1"
KEYPOINT_NUM = 17
# The keypoint logit that counts as "half sure" (Detectron's keypoint drawing threshold).
KEYPOINT_LOGIT_CENTER = 2.0
# torchvision's defaults: the scale the COCO weights were trained and evaluated at.
DEFAULT_MIN_SIZE = 800
DEFAULT_MAX_SIZE = 1333

People = Tuple[np.ndarray, np.ndarray]  # coords (P, 17, 2) pixels, scores (P, 17) in [0, 1]


def weights_url() -> str:
    """Where torchvision downloads the COCO weights from."""
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights

    return KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.url


def _no_weights_message(reason: str) -> str:
    return (f"no Keypoint R-CNN weights: {reason}; either let torchvision download "
            f"{WEIGHTS_NAME} ({weights_url()}) into its cache, or download that file elsewhere "
            "and pass --pose_weights PATH (or give the poses with --poses FILE)")


def _state_dict(weights: str) -> dict:
    """The state dict of `weights`: 'default' (torchvision's weights API) or a local file."""
    if weights == "default":
        from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights

        # torch.hub prints "Downloading: ..." before it fails offline; the one-line error below
        # says everything, so that line is kept out of the way.
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                return KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.get_state_dict(progress=False)
        except Exception as err:  # URLError offline, a hash mismatch, a full disk...
            cause = str(getattr(err, "reason", None) or err)
            reason = cause.splitlines()[0] if cause else type(err).__name__
            raise UsageError(_no_weights_message(f"torchvision could not get them ({reason})")
                             ) from None
    if not osp.isfile(weights):
        raise UsageError(_no_weights_message(f"--pose_weights {weights} is not a file"))
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UsageError(_no_weights_message(
            f"--pose_weights {weights} cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})")) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # torchvision's reference training scripts save {'model': ...}
    if not isinstance(state, dict):
        raise UsageError(_no_weights_message(f"--pose_weights {weights} holds no state dict"))
    return state


def load_keypoint_rcnn(*, weights: Optional[str] = "default", min_size: int = DEFAULT_MIN_SIZE,
                       max_size: Optional[int] = None, person_thr: float = 0.5,
                       max_people: int = 20, proposals: int = 1000) -> nn.Module:
    """torchvision's Keypoint R-CNN (ResNet-50 FPN), in eval mode, on the CPU.

    Args:
        weights: 'default' (torchvision's COCO weights, from its cache or downloaded), the path
            of a local copy of them, or None (random initialisation, no download: tests).
        min_size, max_size: the detector resizes each frame so that its shorter side is
            `min_size` unless the longer one would exceed `max_size` (None: `min_size * 5 / 3`,
            torchvision's 800 / 1333).
        person_thr: people detected with a lower score are dropped inside the detector (their
            keypoints are never computed, which is most of the cost).
        max_people: at most this many people per frame.
        proposals: region proposals scored per frame (torchvision: 1000; fewer is faster).

    Raises:
        UsageError: the weights cannot be had or do not fit, in one line naming
            `--pose_weights PATH` and torchvision's weights.
    """
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    if max_size is None:
        max_size = int(round(min_size * DEFAULT_MAX_SIZE / DEFAULT_MIN_SIZE))
    # The weights first: without them there is nothing to build the model for.
    state = _state_dict(weights) if weights is not None else None
    model = keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, num_keypoints=KEYPOINT_NUM,
        min_size=min_size, max_size=max_size, box_score_thresh=person_thr,
        box_detections_per_img=max_people, rpn_post_nms_top_n_test=proposals)
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise UsageError(_no_weights_message(
                f"{weights if weights != 'default' else WEIGHTS_NAME} does not fit torchvision's "
                f"keypointrcnn_resnet50_fpn ({first})")) from None
    return model.eval()


def keypoint_confidence(logits: np.ndarray, person_scores: np.ndarray) -> np.ndarray:
    """Joint confidences in [0, 1] from Keypoint R-CNN's outputs (see the module docstring).

    Args:
        logits: `(P, K)` keypoint logits (`keypoints_scores`).
        person_scores: `(P,)` detection scores in [0, 1].
    Returns:
        `(P, K)` float32 `person_score * sigmoid(logit - 2)`.
    """
    logits = np.asarray(logits, dtype=np.float64)
    person_scores = np.asarray(person_scores, dtype=np.float64)
    sure = 1.0 / (1.0 + np.exp(-(logits - KEYPOINT_LOGIT_CENTER)))
    return (person_scores[:, None] * sure).astype(np.float32)


class KeypointEstimator:
    """Runs a Keypoint R-CNN over frames, `batch_size` frames at a time, on `device`.

    Args:
        model: from `load_keypoint_rcnn` (moved to `device` here).
        device: where it runs.
        batch_size: frames per forward pass.
    """

    def __init__(self, model: nn.Module, *, device: torch.device, batch_size: int = 4) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, frames: Sequence[np.ndarray]) -> List[People]:
        """The people of each frame.

        Args:
            frames: `(H, W, 3)` uint8 RGB images (sizes may differ).
        Returns:
            one `(coords (P, 17, 2), scores (P, 17))` per frame, float32: (x, y) in the frame's
            pixels, scores from `keypoint_confidence`; P = 0 when nobody was found.
        """
        people: List[People] = []
        for first in range(0, len(frames), self.batch_size):
            batch = [torch.from_numpy(np.ascontiguousarray(f)).to(self.device)
                     .permute(2, 0, 1).float().div_(255.0)
                     for f in frames[first:first + self.batch_size]]
            for out in self.model(batch):
                coords = out["keypoints"][..., :2].float().cpu().numpy()
                logits = out["keypoints_scores"].float().cpu().numpy()
                scores = keypoint_confidence(logits, out["scores"].float().cpu().numpy())
                people.append((coords.reshape(-1, KEYPOINT_NUM, 2).astype(np.float32),
                               scores.reshape(-1, KEYPOINT_NUM)))
        return people
