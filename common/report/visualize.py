"""Pictures of a prediction: skeletons and text drawn on frames, the video written as MP4 (or
GIF), and the summary figure (top-5 classes, the pose gate and stream agreement per clip).

Frames are `(H, W, 3)` uint8 RGB throughout; nothing here reads the config or the joint set
(the limbs are an argument).
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from typing import Any, Collection, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from common.io.atomic_file import atomic_write

logger = logging.getLogger("integral_action.visualize")

DPI = 120
# One colour per person the network sees (RGB); people it does not see are drawn grey.
PERSON_COLORS: Tuple[Tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 200, 255), (255, 210, 0), (120, 255, 90), (230, 90, 255),
    (255, 140, 40), (0, 255, 200), (255, 120, 190))
UNSEEN_COLOR = (150, 150, 150)
TEXT_SCALE = 0.45


def rank_people(scores: np.ndarray) -> np.ndarray:
    """People of one frame ordered as the loaders keep them: by mean joint score, highest
    first, ties in input order. `scores (P, J)` -> indices `(P,)`."""
    scores = np.asarray(scores, dtype=np.float32)
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argsort(-scores.mean(axis=1), kind="stable")


def draw_people(frame: np.ndarray, coords: np.ndarray, scores: np.ndarray, *,
                limbs: Sequence[Tuple[int, int]], score_thr: float, top_k: int) -> np.ndarray:
    """Draw the skeletons of one frame's people.

    Args:
        frame: `(H, W, 3)` uint8 RGB (not modified).
        coords: `(P, J, 2)` joint (x, y) in the frame's pixels.
        scores: `(P, J)`; joints below `score_thr` (and limbs with such an end) are not drawn,
            as the pose maps leave them out.
        limbs: the joint pairs to connect.
        top_k: the people the network sees (the `top_k` best by mean score) get a colour each;
            the others are drawn thin and grey.
    Returns:
        a new `(H, W, 3)` uint8 frame.
    """
    out = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    coords = np.asarray(coords, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    thickness = max(1, int(round(min(out.shape[:2]) / 160)))
    order = rank_people(scores)
    # Unseen people first, so that the seen ones are drawn on top of them.
    for rank in list(range(top_k, len(order))) + list(range(min(top_k, len(order)))):
        person = order[rank]
        seen = rank < top_k
        color = PERSON_COLORS[rank % len(PERSON_COLORS)] if seen else UNSEEN_COLOR
        width = thickness if seen else max(1, thickness // 2)
        ok = np.isfinite(coords[person]).all(axis=1) & (scores[person] >= score_thr)
        points = np.round(np.nan_to_num(coords[person])).astype(np.int64)
        points = np.clip(points, -10 * max(out.shape), 10 * max(out.shape))
        for a, b in limbs:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(int(v) for v in points[a]), tuple(int(v) for v in points[b]),
                         color, width, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(out, tuple(int(v) for v in points[j]), width + 1, color, -1, cv2.LINE_AA)
    return out


def draw_box(frame: np.ndarray, box: Sequence[float], color: Tuple[int, int, int] = (255, 255, 255)
             ) -> np.ndarray:
    """Outline `box = (xmin, ymin, w, h)` (in place; returns the frame)."""
    xmin, ymin, w, h = box
    cv2.rectangle(frame, (int(round(xmin)), int(round(ymin))),
                  (int(round(xmin + w - 1)), int(round(ymin + h - 1))), color, 1, cv2.LINE_AA)
    return frame


def draw_text_lines(frame: np.ndarray, lines: Sequence[str], *, origin: str = "top") -> np.ndarray:
    """Write lines of text in the top (or bottom) left corner on a dark band (in place)."""
    if not lines:
        return frame
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = TEXT_SCALE * max(0.6, min(frame.shape[:2]) / 256)
    height = int(round(18 * scale / TEXT_SCALE))
    band = height * len(lines) + 4
    top = 0 if origin == "top" else frame.shape[0] - band
    region = frame[max(0, top):top + band]
    region[:] = (region.astype(np.float32) * 0.4).astype(np.uint8)  # darken, keep the scene
    for i, line in enumerate(lines):
        y = top + (i + 1) * height - 4
        cv2.putText(frame, line, (4, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


# The crop box on the frames the network's clips sample, and on the others.
SAMPLED_BOX_COLOR = (255, 255, 0)
OTHER_BOX_COLOR = (255, 255, 255)


def annotate_frames(frames: np.ndarray, *, poses: Mapping[int, Tuple[np.ndarray, np.ndarray]],
                    limbs: Sequence[Tuple[int, int]], score_thr: float, top_k: int,
                    box: Sequence[float], sampled: Collection[int],
                    captions: Sequence[Sequence[str]]) -> List[np.ndarray]:
    """Every frame with its skeletons, the crop box and its caption.

    Args:
        frames: `(N, H, W, 3)` uint8 RGB (not modified).
        poses: `{k + 1: (coords (P, J, 2) normalised by (W, H), scores (P, J))}` for the 0-based
            frame k (the kinetics-skeleton pose table); frames absent have nobody drawn.
        limbs, score_thr, top_k: as `draw_people`.
        box: `(xmin, ymin, w, h)` in the frames' pixels, drawn in `SAMPLED_BOX_COLOR` on the
            0-based frames in `sampled` and in `OTHER_BOX_COLOR` elsewhere.
        captions: per frame, the lines of text written in its top left corner.
    Returns:
        N new `(H, W, 3)` uint8 frames.
    """
    height, width = frames.shape[1:3]
    size = np.array([width, height], dtype=np.float32)
    out = []
    for k, frame in enumerate(frames):
        if (k + 1) in poses:
            coords, scores = poses[k + 1]
            drawn = draw_people(frame, coords * size, scores, limbs=limbs, score_thr=score_thr,
                                top_k=top_k)
        else:
            drawn = frame.copy()
        draw_box(drawn, box, SAMPLED_BOX_COLOR if k in sampled else OTHER_BOX_COLOR)
        out.append(draw_text_lines(drawn, captions[k]))
    return out


# --------------------------------------------------------------------------- files
def _encode_mp4(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    import av
    from fractions import Fraction

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    height, width = frames[0].shape[:2]
    # yuv420p halves the chroma resolution: both sides must be even.
    even_h, even_w = height + height % 2, width + width % 2
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            if (even_h, even_w) != frame.shape[:2]:
                frame = cv2.copyMakeBorder(frame, 0, even_h - height, 0, even_w - width,
                                           cv2.BORDER_REPLICATE)
            for packet in stream.encode(av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _encode_gif(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, int(round(1000 / fps))), loop=0)


def write_video(frames: Sequence[np.ndarray], path: str, *, fps: float,
                allow_gif: bool = True) -> str:
    """Write frames as an MP4 (PyAV: H.264, else MPEG-4 part 2); when that fails and
    `allow_gif`, as a GIF beside it (Pillow). The file appears complete or not at all.

    Args:
        frames: `(H, W, 3)` uint8 RGB frames of one size.
        path: the `.mp4` (or `.gif`: write a GIF directly) to write; its folder is created.
        fps: frames per second.
    Returns:
        the path written (`.gif` after a fall-back).
    """
    if not len(frames):
        raise ValueError("no frames to write")
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = osp.splitext(path)
    attempts: List[Tuple[str, Any]] = []
    if ext.lower() != ".gif":
        attempts.append((path, _encode_mp4))
    if allow_gif or ext.lower() == ".gif":
        attempts.append((stem + ".gif", _encode_gif))
    error: Optional[BaseException] = None
    for target, encode in attempts:
        tmp = osp.join(folder, f".{osp.basename(target)}.{os.getpid()}.tmp")
        try:
            encode(frames, tmp, fps)
            os.replace(tmp, target)
            if error is not None:  # the fall-back worked: say why the first format did not
                logger.warning("could not write %s (%s: %s); wrote %s instead", path,
                               type(error).__name__, error, target)
            return target
        except Exception as err:  # an encoder this FFmpeg build lacks, a full disk...
            error = err
            if osp.exists(tmp):
                os.remove(tmp)
    raise OSError(f"cannot write {path}: {type(error).__name__}: {error}")


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def plot_prediction_summary(path: str, *, probs: np.ndarray, class_names: Sequence[str],
                            clip_times: np.ndarray, clip_probs: np.ndarray,
                            gates: Optional[np.ndarray] = None,
                            agreements: Optional[np.ndarray] = None, title: str = "",
                            top: int = 5) -> str:
    """The summary PNG of one video's prediction.

    Left: the `top` classes by probability (video level: the clips' mean). Right: over the
    video, per sampled clip (x = the clip's first frame, in seconds), the probability each clip
    gives the predicted class and, when given, the pose gate (1: the fused feature is all pose,
    0: all RGB) and the stream agreement.

    Args:
        probs: `(C,)` class probabilities of the video.
        class_names: C names.
        clip_times: `(N,)` start time of each clip, seconds.
        clip_probs: `(N, C)` each clip's probabilities.
        gates: `(N,)` mean gate of each clip (rgb+pose), or None.
        agreements: `(N,)` agreement of each clip (`stream_agreement`), or None.
    Returns:
        `path` (written atomically; its folder is created).
    """
    probs = np.asarray(probs, dtype=np.float64)
    clip_probs = np.asarray(clip_probs, dtype=np.float64)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")[:top]
    fig = _new_figure(11.0, 4.0)
    bars = fig.add_subplot(1, 2, 1)
    rows = np.arange(len(order))
    bars.barh(rows, probs[order], color="tab:blue")
    bars.set_yticks(rows)
    bars.set_yticklabels([str(class_names[i]) for i in order])
    bars.invert_yaxis()
    bars.set_xlim(0.0, 1.0)
    bars.set_xlabel("probability (mean of the clips)")
    for row, value in zip(rows, probs[order]):
        bars.text(min(value + 0.01, 0.85), row, f"{value:.3f}", va="center", fontsize=8)
    bars.set_title(f"top-{len(order)} classes")

    over_time = fig.add_subplot(1, 2, 2)
    best = int(order[0])
    over_time.plot(clip_times, clip_probs[:, best], "o-", color="tab:blue",
                   label=f"p({class_names[best]}) per clip")
    if gates is not None:
        over_time.plot(clip_times, np.asarray(gates, dtype=np.float64), "s-", color="tab:orange",
                       label="pose gate (1 = pose, 0 = RGB)")
    if agreements is not None:
        over_time.plot(clip_times, np.asarray(agreements, dtype=np.float64), "^-",
                       color="tab:green", label="stream agreement")
    over_time.set_ylim(-0.02, 1.02)
    over_time.set_xlabel("clip start (s)")
    over_time.set_title("per sampled clip")
    over_time.legend(loc="lower left", fontsize=8)
    over_time.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI)
    return path
