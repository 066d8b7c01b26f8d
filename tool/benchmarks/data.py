"""The data the loading, training-step and inference cases read: the project's synthetic
Kinetics-format set at the released frames' size (shorter side 256), generated once."""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict

from easydict import EasyDict

from main.config import build_config
from tool.make_synthetic_dataset import generate_dataset


def benchmark_data(output_dir: str, *, smoke: bool) -> str:
    """The data folder (`cfg.data_dir`), generated on first use (a few seconds)."""
    folder = osp.join(output_dir, "benchmark_data" + ("_smoke" if smoke else ""))
    if smoke:
        generate_dataset(folder, seed=0, num_classes=2, train_per_class=2, test_per_class=1,
                         frames=12, height=32, width=42)
    else:
        # 72 frames: one clip spans 8 frames x 8 = 64; 340 x 256 as Kinetics' released frames.
        generate_dataset(folder, seed=0, num_classes=2, train_per_class=4, test_per_class=2,
                         frames=72, height=256, width=340)
    return folder


def benchmark_config(data_dir: str, *, smoke: bool, **overrides: Any) -> EasyDict:
    """The paper's shapes (8 frames every 8th, 224 x 224, 56 x 56 maps, batch 8, 10 test
    clips) on the benchmark data; tiny ones in smoke mode."""
    fields: Dict[str, Any] = dict(dataset="Kinetics", subset="Synth", data_dir=data_dir,
                                  pretrained="none", progress_bar=False)
    if smoke:
        fields.update(frame_per_seg=2, frame_interval=2, video_shape=(24,),
                      input_img_shape=(16, 16), input_hm_shape=(8, 8), train_batch_size=2,
                      test_batch_size=4, test_infer_num=2)
    fields.update(overrides)
    return build_config(fields)
