"""The synthetic data set's annotation files: each video's pose file (kinetics-skeleton for the
Kinetics splits, Mimetics' `pose_results` format for the out-of-context split), the COCO-layout
annotation files and the kinetics-skeleton label files (see docs/data_format.md).

Floats are rounded before they are written and keys sorted (`layout.write_json`), so the same
data always gives the same bytes.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from tool.synthetic.layout import pose_path, write_json
from tool.synthetic.plan import CLASSES, OUT_OF_CONTEXT_SPLITS, GenParams, VideoPlan

# Per frame, per person (the actor first): `(xy (18, 2) pixels, score (18,))`.
Detections = List[List[Tuple[np.ndarray, np.ndarray]]]


def mimetics_pose_content(detections: Detections) -> Dict[str, Any]:
    """Mimetics' `data.json`: per frame the people's (x, y, score) per joint, flattened, in
    pixels (None for a frame without anybody), and a score of 1 per person."""
    pose, score = [], []
    for found in detections:
        flat: List[float] = []
        for xy, sc in found:
            # (x, y, score) per joint, flattened; np.round then tolist() gives the same
            # shortest float reprs on every run.
            flat += np.concatenate([np.round(xy, 2), np.round(sc, 3)[:, None]],
                                   axis=1).reshape(-1).tolist()
        pose.append(flat or None)  # None = nobody detected in this frame
        score.append([1.0] * len(found))
    return {"pose": pose, "score": score}


def kinetics_pose_content(detections: Detections, *, height: int, width: int,
                          label: str, label_index: int) -> Dict[str, Any]:
    """The kinetics-skeleton file: per frame (`frame_index` from 1) the people's joints
    normalised by the frame size `(width, height)`, and the class."""
    data = []
    for t, found in enumerate(detections):
        skeleton = []
        for xy, sc in found:
            norm = xy / np.array([width, height])  # the kinetics-skeleton release is normalised
            skeleton.append({"pose": np.round(norm, 4).reshape(-1).tolist(),
                             "score": np.round(sc, 3).tolist()})
        data.append({"frame_index": t + 1, "skeleton": skeleton})  # 1-based, as released
    return {"data": data, "label": label, "label_index": label_index}


def write_pose_file(plan: VideoPlan, params: GenParams, paths: Dict[str, str],
                    detections: Detections) -> None:
    """The pose file of one video, in its split's format."""
    if plan.split in OUT_OF_CONTEXT_SPLITS:
        content = mimetics_pose_content(detections)
    else:
        content = kinetics_pose_content(detections, height=params.height, width=params.width,
                                        label=CLASSES[plan.label].name, label_index=plan.label)
    # Flushed to disk with the frames, all at once, before the set is marked complete.
    write_json(pose_path(paths, plan), content, durable=False)


def categories(params: GenParams) -> List[Dict[str, Any]]:
    """The COCO `categories`: one per class, id = class index."""
    return [{"id": i, "name": CLASSES[i].name} for i in range(params.num_classes)]


def coco_annotations(plans: Sequence[VideoPlan], params: GenParams) -> Dict[str, Any]:
    """The COCO-layout annotation file of one split: an image and an annotation per video."""
    images, annotations = [], []
    for plan in plans:
        name = CLASSES[plan.label].name
        images.append({"id": plan.number, "seq_name": name, "file_name": plan.file_name,
                       "height": params.height, "width": params.width,
                       "frame_num": params.frames})
        # `category_id` is not in the Kinetics release; it makes the file plain COCO, whose
        # index (pycocotools) requires it as soon as `categories` is present.
        annotations.append({"id": plan.number, "image_id": plan.number,
                            "action_label": plan.label, "action_name": name,
                            "category_id": plan.label})
    return {"images": images, "annotations": annotations, "categories": categories(params)}


def skeleton_labels(plans: Sequence[VideoPlan]) -> Dict[str, Any]:
    """The kinetics-skeleton label file of one split: {video: has_skeleton, label, index}."""
    return {plan.name: {"has_skeleton": True, "label": CLASSES[plan.label].name,
                        "label_index": plan.label} for plan in plans}


def write_annotations(plans: Dict[str, List[VideoPlan]], params: GenParams,
                      paths: Dict[str, str]) -> None:
    """The annotation files of the five splits and the label files of the Kinetics ones (the
    in-context validation videos are listed in the val label file, beside the test videos)."""
    for split, key in (("train", "kinetics_train_json"), ("val", "kinetics_val_json"),
                       ("mimetics", "mimetics_json"), ("valid_in", "valid_in_json"),
                       ("valid_out", "valid_out_json")):
        write_json(paths[key], coco_annotations(plans[split], params))
    for part, splits in (("train", ("train",)), ("val", ("val", "valid_in"))):
        write_json(os.path.join(paths["kinetics_skeleton_dir"], f"kinetics_{part}_label.json"),
                   skeleton_labels([p for s in splits for p in plans[s]]))
