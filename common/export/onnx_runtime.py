"""An exported .onnx network run by onnxruntime, called like the PyTorch model.

`OnnxModel(path)(batch)` takes the batch dict the model takes ('video', 'pose_coords',
'pose_scores': the stage's inputs; other keys are ignored) and returns the model's dict
('logits' (B, C), 'gate' (B*T, D) or None, 'agreement' (B,) or None) as CPU tensors, so that
the demo and the benchmark use either engine alike, and the file's own 'probs' (B, C). The only
module that imports onnxruntime (an optional extra: `pip install -e '.[export]'`).
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from common.errors import CheckpointError, UsageError
from common.export.files import INSTALL_HINT
from common.export.signature import METADATA_KEY, ExportInfo


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"--backend onnxruntime needs the export extra: {INSTALL_HINT}") from None
    return onnxruntime


def execution_providers(available: Sequence[str], device: torch.device
                        ) -> List[Union[str, Tuple[str, Dict[str, int]]]]:
    """onnxruntime's execution providers for `device`, given the `available` ones
    (`onnxruntime.get_available_providers()`): the CPU's, or CUDA's on the device's own index
    (onnxruntime would take GPU 0 for any `cuda:N` otherwise) with the CPU's behind it.

    Raises:
        UsageError: `device` is neither the CPU nor a GPU that the available providers reach.
    """
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                "CPUExecutionProvider"]
    raise UsageError(f"--device {device}: the installed onnxruntime runs only on "
                     f"{', '.join(available)}; use --device cpu")


class OnnxModel:
    """An onnxruntime session over a file of tool/export.py (see the module's docstring).

    Args:
        path: the .onnx file.
        device: where it runs (the CPU; CUDA with an onnxruntime built for it).
        threads: intra-op threads (None: onnxruntime's choice, one per core).

    Raises:
        UsageError: onnxruntime is not installed, or cannot run on `device`.
        CheckpointError: the file is missing, unreadable or not tool/export.py's.
    """

    def __init__(self, path: str, *, device: torch.device = torch.device("cpu"),
                 threads: Optional[int] = None) -> None:
        ort = _onnxruntime()
        if not osp.isfile(path):
            raise CheckpointError(f"{path}: no such file (export one with tool/export.py)")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: not the optimiser's notes
        if threads:
            options.intra_op_num_threads = threads
        providers = execution_providers(ort.get_available_providers(), device)
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as err:  # noqa: BLE001 - any load failure ends the same way
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path}: onnxruntime cannot load it ({first})") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = ExportInfo.from_json(meta.get(METADATA_KEY), path)
        self.path = path

    def eval(self) -> "OnnxModel":
        """Nothing to switch (the graph is the eval-mode network); as `nn.Module.eval`."""
        return self

    def __call__(self, inputs: Dict[str, Tensor]) -> Dict[str, Optional[Tensor]]:
        feed = {name: inputs[name].detach().cpu().float().numpy() for name in self.info.inputs}
        batch = next(iter(feed.values())).shape[0]
        step = self.info.max_batch or batch
        parts = [self.session.run(None, {k: v[i:i + step] for k, v in feed.items()})
                 for i in range(0, batch, step)]
        out = {name: torch.from_numpy(np.concatenate([p[k] for p in parts]))
               for k, name in enumerate(self.info.outputs)}
        gate = out.get("gate")
        return {"logits": out["logits"], "probs": out["probs"],
                "gate": gate.reshape(-1, gate.shape[-1]) if gate is not None else None,
                "agreement": out.get("agreement")}
