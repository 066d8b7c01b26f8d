"""Which code produced a run: the git revision of the project, for logs and snapshots."""
from __future__ import annotations

import os.path as osp
import subprocess
from typing import Dict, Union

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=10,
                         check=True)
    return out.stdout.strip()


def git_revision() -> Dict[str, Union[str, bool]]:
    """`{'commit': <sha> or 'unknown', 'dirty': uncommitted changes to tracked files}`.

    'unknown' where the project is not a git checkout or git is missing (an unpacked archive):
    a run must not fail for want of its provenance.
    """
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": False}
    return {"commit": commit, "dirty": dirty}


def describe_revision(rev: Dict[str, Union[str, bool]]) -> str:
    return f"{rev['commit']}{' (with uncommitted changes)' if rev.get('dirty') else ''}"
