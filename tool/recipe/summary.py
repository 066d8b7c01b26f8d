"""The recipe's record: `<output_dir>/train_all_summary.json` and the results table."""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, List, Mapping

from common.io.atomic_file import atomic_write

SUMMARY_FILE = "train_all_summary.json"


def write_summary(output_dir: str, stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Add this run's stages to `<output_dir>/train_all_summary.json`, keyed by stage folder
    (the entries of other folders, another fusion recipe's, stay); returns its path."""
    path = osp.join(output_dir, SUMMARY_FILE)
    by_folder: Dict[str, Any] = {}
    try:
        with open(path) as f:
            earlier = json.load(f).get("stages", {})
        if isinstance(earlier, dict):
            by_folder.update(earlier)
    except (OSError, ValueError, AttributeError):
        pass  # none yet, or unreadable: this run's stages replace it
    by_folder.update({record["folder"]: record for record in stages.values()})
    with atomic_write(path) as f:
        json.dump({"output_dir": output_dir, "stages": by_folder}, f, indent=1, default=str)
    return path


def format_table(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Top-1 / top-5 per stage (rows) and test set (columns), as aligned text."""
    datasets: List[str] = []
    for record in stages.values():
        datasets += [d for d in record.get("tests", {}) if d not in datasets]
    rows = [["stage", "folder", "epoch"] + [f"{d} top-1 / top-5" for d in datasets]]
    for record in stages.values():
        cells = [record["mode"], record["folder"], str(record["last_epoch"])]
        for dataset in datasets:
            test = record.get("tests", {}).get(dataset)
            cells.append(f"{test['top1']:.2f} / {test['top5']:.2f}" if test else "-")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
