"""Extract the frames of videos into the on-disk layout the loaders read.

    python tool/video2image.py --src VIDEO_OR_FOLDER --dst OUT_FOLDER [--short_side 256]
        [--fps none] [--quality 95] [--ext jpg] [--workers 2] [--overwrite]

Every video becomes one folder, named after the video's full stem (`a.b.mp4` -> `a.b`), holding
JPEGs `000001.jpg, 000002.jpg, ...` (1-based; `--ext png` writes lossless PNGs
`000001.png, ...` instead, e.g. to compare with frames decoded from the videos themselves). When `--src` is a folder it is walked recursively
for video files and its sub-folders are mirrored under `--dst`, which gives the Kinetics layout
`<split>_256/<class>/<video_stem>/000001.jpg` from `<split>/<class>/<video_stem>.mp4`.

The original project built `ffmpeg` shell commands from file names, so a name with a space, a
quote or a `;` broke the extraction or ran a command. Here the videos are decoded in-process with
PyAV: no shell is ever started, and any name that is legal for a file works.
"""

import argparse
import os
import os.path as osp
import shutil
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from common.errors import exit_on_error, quiet_worker_signals
from data.sources.jpeg_folder import FRAME_NAME
from data.video_decode import (VIDEO_EXTENSIONS, apply_rotation, is_video_file,
                               iter_video_frames, resize_short_side, video_stem)
from main.video_options import add_video_options, check_video_options

__all__ = ["VIDEO_EXTENSIONS", "apply_rotation", "extract_frames", "extract_tree",
           "find_videos", "is_video_file", "main", "resize_short_side", "video_stem"]

# Temporary folders start with a dot so that a folder walk (and a person running `ls`) does not
# mistake an interrupted extraction for a finished video folder.
_PARTIAL_TAG = ".partial-"

# Frame file types: jpg (what the loaders read) or png (lossless).
FRAME_EXTENSIONS = ("jpg", "png")


def _write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
    """Write a JPEG and raise when it did not happen (see `_write_image`)."""
    _write_image(path, image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def _write_image(path: str, image: np.ndarray, params: List[int]) -> None:
    """Write an image of the type `path`'s extension names, with OpenCV's `params`, and
    raise when it did not happen (cv2.imwrite only returns False).

    cv2 receives the path as UTF-8, which a Linux file name with bytes that are not UTF-8
    (Python holds them as surrogate escapes) cannot be; such a path is written by Python's own
    `open`, which takes any name the file system takes.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        ok, data = cv2.imencode(osp.splitext(path)[1], image, params)
        if not ok:
            raise IOError(f"cannot encode an image for {path!r}")
        with open(path, "wb") as f:
            f.write(data.tobytes())
        return
    if not cv2.imwrite(path, image, params):
        raise IOError(f"cannot write frame {path!r}")


def _decode_into(video_path: str, folder: str, *, short_side: int, quality: int,
                 fps: Optional[float], ext: str = "jpg") -> int:
    """Decode `video_path` into JPEGs (PNGs for `ext` 'png') in `folder`
    (`data.video_decode.iter_video_frames`: frame selection, rotation, resize); returns how
    many were written."""
    written = 0
    for image in iter_video_frames(video_path, short_side=short_side, fps=fps):
        written += 1
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        path = osp.join(folder, FRAME_NAME % written)
        if ext == "jpg":
            _write_jpeg(path, bgr, quality)
        else:  # the same name with the other extension, written losslessly
            _write_image(osp.splitext(path)[0] + "." + ext, bgr, [])
    return written


def extract_frames(video_path: str, out_dir: str, *, short_side: int = 256, quality: int = 95,
                   fps: Optional[float] = None, overwrite: bool = False, ext: str = "jpg") -> int:
    """Extract the frames of one video into `out_dir` as `000001.jpg, 000002.jpg, ...`.

    Args:
        video_path: the video file; any characters legal in a file name are fine.
        out_dir: the folder to create (its parent is created when missing).
        short_side: resize so the shorter side has this many pixels; 0 keeps the original size.
        quality: JPEG quality, 0-100.
        fps: keep the frames on a grid of this rate (by timestamp); None keeps every frame.
        overwrite: replace an existing `out_dir` instead of skipping the video.
        ext: 'jpg', or 'png' for lossless frames (`000001.png, ...`).

    Returns:
        The number of frames written; 0 when `out_dir` already existed and was kept.

    Raises:
        Whatever opening or decoding raises (FFmpeg errors for corrupt videos, OSError), and
        ValueError when the video has no video stream, no frame could be decoded, or clearly
        fewer frames than its container declares (a truncated download). Nothing is left in
        `out_dir` in that case.

    The frames go into a hidden temporary folder beside `out_dir` which is renamed into place
    only once every frame is written: a folder named like a video is therefore always complete,
    and an interrupted run is redone rather than skipped as done on the next run.
    """
    out_dir = osp.abspath(out_dir)
    if osp.lexists(out_dir) and not overwrite:
        return 0
    parent, name = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    # pid and a random part keep concurrent workers and runs apart; the name is cut so the temp
    # name stays within the file system's 255-byte limit even for long (or non-ASCII) names.
    tmp_dir = osp.join(parent, f".{name[:40]}{_PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    # os.mkdir honours the umask, unlike tempfile.mkdtemp's 0o700, so the finished folder has
    # the same permissions as folders made any other way.
    os.mkdir(tmp_dir)
    try:
        count = _decode_into(video_path, tmp_dir, short_side=short_side, quality=quality,
                             fps=fps, ext=ext)
        if count == 0:
            raise ValueError("no frame could be decoded")
        if osp.lexists(out_dir):  # overwrite: move the old folder aside first, then drop it
            old_dir = tmp_dir + "-old"
            os.rename(out_dir, old_dir)
            os.rename(tmp_dir, out_dir)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            os.rename(tmp_dir, out_dir)
    except BaseException:
        # BaseException too: a Ctrl-C must not leave a partial folder behind either.
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return count


def find_videos(src: str) -> List[str]:
    """Video files under `src` (or `src` itself when it is a file), sorted for a stable order."""
    if osp.isfile(src):
        return [src]
    videos = []
    for base, dirs, files in os.walk(src):
        dirs.sort()
        # Hidden folders are skipped: they include this tool's own temporary folders when
        # --dst is inside --src, and never hold a data set's videos.
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        videos.extend(osp.join(base, f) for f in sorted(files) if is_video_file(f))
    return videos


def _out_dir_for(video: str, src: str, dst: str) -> str:
    """`dst/<sub-folders of video under src>/<video stem>`; `dst/<stem>` for a single file."""
    if osp.isfile(src):
        return osp.join(dst, video_stem(video))
    rel_folder = osp.dirname(osp.relpath(video, src))
    return osp.normpath(osp.join(dst, rel_folder, video_stem(video)))


def _extract_job(job: Tuple[str, str, int, int, Optional[float], bool, str]
                 ) -> Tuple[str, int, str]:
    """One video, for the worker pool: ("done", frames, "") or ("failed", 0, reason).

    Errors are turned into a reason here, in the worker, because an exception object from
    FFmpeg may not survive the trip back to the parent process.
    """
    video, out_dir, short_side, quality, fps, overwrite, ext = job
    try:
        count = extract_frames(video, out_dir, short_side=short_side, quality=quality, fps=fps,
                               overwrite=overwrite, ext=ext)
    except Exception as err:  # a bad video is reported and skipped, never stops the others
        return "failed", 0, f"{type(err).__name__}: {err}"
    return "done", count, ""


def extract_tree(src: str, dst: str, *, short_side: int = 256, quality: int = 95,
                 fps: Optional[float] = None, workers: int = 2, overwrite: bool = False,
                 verbose: bool = False, ext: str = "jpg") -> Dict[str, object]:
    """Extract every video under `src` (a folder, walked recursively, or one video file).

    The sub-folders of `src` are mirrored under `dst`, one frame folder per video. A video
    whose folder exists already is skipped unless `overwrite`. A video that cannot be read is
    counted as failed with its reason and the others go on.

    Returns:
        {"done": int, "skipped": int, "failed": int, "frames": int (written in this run),
         "failures": [(video_path, reason), ...]}
    """
    result: Dict[str, object] = {"done": 0, "skipped": 0, "failed": 0, "frames": 0,
                                 "failures": []}
    failures: List[Tuple[str, str]] = result["failures"]  # type: ignore[assignment]
    if not osp.exists(src):
        raise FileNotFoundError(f"no such video or folder: {src!r}")
    jobs = []
    owner: Dict[str, str] = {}
    for video in find_videos(src):
        out_dir = _out_dir_for(video, src, dst)
        if out_dir in owner:
            # `x.mp4` and `x.avi` side by side want the same folder; the first (sorted) one
            # keeps it, rather than the second silently replacing or being mistaken for it.
            failures.append((video, f"output folder {out_dir!r} is already used by "
                                    f"{owner[out_dir]!r}"))
            continue
        owner[out_dir] = video
        if osp.lexists(out_dir) and not overwrite:
            result["skipped"] += 1  # type: ignore[operator]
            continue
        jobs.append((video, out_dir, short_side, quality, fps, overwrite, ext))

    def record(job: tuple, outcome: Tuple[str, int, str]) -> None:
        status, count, reason = outcome
        if status == "done":
            result["done"] += 1  # type: ignore[operator]
            result["frames"] += count  # type: ignore[operator]
        else:
            failures.append((job[0], reason))
        if verbose:
            print(f"{status}: {job[0]!r}" + (f" ({count} frames)" if status == "done"
                                             else f" ({reason})"), flush=True)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            record(job, _extract_job(job))
    else:
        # The workers ignore Ctrl-C/SIGTERM (sent to the whole process group): this process
        # stops them, dropping the videos not started and letting the running ones finish.
        pool = ProcessPoolExecutor(max_workers=workers, initializer=quiet_worker_signals)
        try:
            for job, outcome in zip(jobs, pool.map(_extract_job, jobs)):
                record(job, outcome)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    result["failed"] = len(failures)
    return result


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="a video file or a folder of videos")
    parser.add_argument("--dst", required=True, help="the folder to write frame folders into")
    add_video_options(parser)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (0-100)")
    parser.add_argument("--ext", choices=FRAME_EXTENSIONS, default="jpg",
                        help="frame files: jpg (what the loaders read) or png (lossless)")
    parser.add_argument("--workers", type=int, default=2, help="videos extracted in parallel")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-extract videos whose frame folder exists already")
    args = parser.parse_args(argv)
    check_video_options(parser, args)
    if not 0 <= args.quality <= 100:
        parser.error("--quality must be between 0 and 100")
    if not osp.exists(args.src):
        parser.error(f"no such video or folder: {args.src!r}")
    result = extract_tree(args.src, args.dst, short_side=args.short_side, quality=args.quality,
                          fps=args.fps, workers=args.workers, overwrite=args.overwrite,
                          verbose=True, ext=args.ext)
    print(f"done: {result['done']} videos ({result['frames']} frames), "
          f"skipped (folder exists): {result['skipped']}, failed: {result['failed']}")
    for video, reason in result["failures"]:  # type: ignore[union-attr]
        print(f"failed: {video!r}: {reason}")
    return result


if __name__ == "__main__":
    sys.exit(1 if main()["failed"] else 0)
