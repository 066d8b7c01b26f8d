"""Render pose maps (joint heatmaps + part affinity fields) from joint coordinates.

The maps are sparse: a joint's Gaussian (sigma 0.5) is negligible beyond ~3 pixels, a limb covers
a band 2 * paf_sigma wide, and padded people (score 0) and dropped joints draw nothing at all.
So instead of evaluating every (frame, person, joint/limb) on every pixel (the dense formulation
of docs/data_format.md, kept as the test and benchmark reference in
`tool/benchmarks/baselines/pose_maps_dense.py`), this renderer

1. gathers the drawable entries only: (frame, person, joint) with score > score_thr and
   (frame, person, limb) with both joint scores >= score_thr; the others never reach the
   arithmetic, so padded people and dropped joints cost nothing;
2. heatmaps: evaluates each drawable joint's separable Gaussian on a K x K window of the map
   (K = floor(2r) + 1, r where the Gaussian falls to 1e-7: beyond it even five people's sum
   stays far below the 1e-5 agreement with the dense maps) and adds the window into the output;
3. PAFs: walks each drawable limb along its major axis (x when |v_x| >= |v_y|, else y), one
   pixel line per step over the limb's extent; on a line the band |v_perp.(p - p0)| <= paf_sigma
   spans at most 2 sqrt(2) paf_sigma pixels, so C candidates per line cover it. The candidates
   are tested with the dense formulation's own expressions (the same pixels are on, bit for
   bit), and each on-pixel adds v / (number of people covering it), which sums to the mean;
4. clips the heatmaps at 1 where several people's windows added up.

Pure torch on the device of the input (CPU or CUDA), without autograd (coordinates are data):
float64 input is drawn in float64, anything else (e.g. float16 under AMP) in float32, and the
maps are returned in the input's dtype, as the dense renderer does. On a GPU the gathering of
step 1 is replaced by 0/1 weights and fixed-size windows, so that rendering never waits for the
device (see `_render`).

The one deliberate difference from the dense formulation: a joint with a non-finite coordinate
is never drawn, whatever its score, whereas in the dense maps a NaN coordinate poisons its whole
channel even at score 0 (NaN * 0 = NaN).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["render_joint_heatmaps", "render_part_affinity_fields", "render_pose_maps"]

# A joint's Gaussian is drawn where it is >= this. What is left out adds at most
# people * 1e-7 to a pixel, far below the 1e-5 agreement with the dense renderer.
_GAUSSIAN_CUTOFF = 1e-7
# Slack (pixels) of the PAF candidate windows around the band: the on/off test itself is exact,
# the slack only keeps the band inside the windows despite float rounding (~1e-7 of the
# coordinates' magnitude, so good for joints up to ~1e5 pixels away). It is small enough that
# the band still fits C = floor(2 sqrt(2) (paf_sigma + slack)) + 1 = 3 pixels per line at
# paf_sigma = 1 (2 sqrt(2) = 2.83 leaves 0.06 of room).
_BAND_SLACK = 0.05


def _axis_steps(window: int, sizes: Sequence[int], like: Tensor) -> Tuple[Tensor, Tensor]:
    """Offsets 0..window-1 of a window on axes of the given sizes: (len(sizes), window) float, long.

    A window longer than its axis (only on maps smaller than the window) starts at pixel 0; its
    steps past the map get the coordinate +inf, so that nothing is drawn there (the Gaussian is
    0, the PAF test fails), and the index of the last pixel, a valid address that receives 0.
    """
    steps = torch.arange(window, device=like.device)
    steps = steps.expand(len(sizes), window)
    coord = steps.to(like.dtype)
    if min(sizes) < window:
        size = torch.tensor(sizes, device=like.device)[:, None]
        past = steps >= size
        coord = coord.masked_fill(past, math.inf)
        steps = torch.minimum(steps, size - 1)
    return coord, steps


def _draw_heatmaps(out: Tensor, xy: Tensor, drawable: Tensor, *, hm_shape: Tuple[int, int],
                   channels: int, sigma: float, compact: bool) -> None:
    """Add the drawable joints' Gaussians into `out` (people summed), then clip at 1.

    Args:
        out: (N * channels * H * W,) the flat output; joint j's heatmap is channel j.
        xy: (N * P * J, 2) joint (x, y) on the grid, compute dtype (all finite unless compact).
        drawable: (N, P, J) bool, the joints to draw (score > score_thr, finite).
        hm_shape: (H, W).
        compact: draw the drawable joints only (else all, weighted 0/1; see _render).
    """
    height, width = hm_shape
    _, people, joints = drawable.shape
    if compact:
        entry = drawable.reshape(-1).nonzero().squeeze(1)  # (V,) flat (frame, person, joint)
        centre = xy.index_select(0, entry)  # (V, 2)
    else:
        entry = torch.arange(drawable.numel(), device=xy.device)
        centre = xy
    if entry.numel() == 0:
        return
    channel = (entry // (people * joints)) * channels + entry % joints  # frame * channels + j
    radius = sigma * math.sqrt(2.0 * math.log(1.0 / _GAUSSIAN_CUTOFF))
    window = int(math.floor(2.0 * radius)) + 1  # holds every integer of [c - r, c + r]
    # The window starts at ceil(c - r), moved onto the map: it then still holds every pixel of
    # [c - r, c + r] on the map and needs no bounds mask (a joint far outside gets a window at
    # the border whose values underflow to ~0, as they do in the dense maps).
    start = torch.ceil(centre - radius).clamp_(min=0)  # (V, 2)
    start[:, 0].clamp_(max=max(width - window, 0))
    start[:, 1].clamp_(max=max(height - window, 0))
    step, step_index = _axis_steps(window, (width, height), xy)  # (2, K)
    # Separable: exp(-(dx^2 + dy^2) / 2s^2) = gx * gy, evaluated per axis on the window only.
    gauss = torch.exp((start[:, :, None] + step - centre[:, :, None]).square_()
                      .mul_(-1.0 / (2 * sigma ** 2)))  # (V, 2, K): gx, gy
    value = gauss[:, 1, :, None] * gauss[:, 0, None, :]  # (V, K_y, K_x)
    if not compact:
        value *= drawable.reshape(-1, 1, 1)
    start = start.long()
    corner = (channel * height + start[:, 1]) * width + start[:, 0]  # (V,) flat index
    offset = step_index[1, :, None] * width + step_index[0]  # (K_y, K_x)
    index = (corner[:, None, None] + offset).view(-1)
    out.index_add_(0, index, value.view(-1))
    # Summed over people, clipped at 1: only where something was added can the sum exceed 1.
    out.index_copy_(0, index, out.index_select(0, index).clamp_(max=1.0))


class _LimbSegments(NamedTuple):
    """The limbs to draw, one row each, in the (a, b) frame of their major axis.

    entry: (Lv,) flat (frame, person, limb); person: (Lv,) frame * P + p; limb: (Lv,) its index.
    unit: (Lv, 2) unit direction (x, y); length: (Lv,); degenerate: (Lv,) zero length;
    rejected: (Lv,) rows that must draw nothing (degenerate, and when not compact, invalid).
    x_major: (Lv,) x is the major axis (then (a, b) = (x, y), else (y, x)).
    p0_a, p0_b, p1_a, v_a, v_b: (Lv,) the first joint, the second joint's a, the direction.
    size_a, size_b: (Lv,) map pixels along a and along b.
    """

    entry: Tensor
    person: Tensor
    limb: Tensor
    unit: Tensor
    length: Tensor
    degenerate: Tensor
    rejected: Tensor
    x_major: Tensor
    p0_a: Tensor
    p0_b: Tensor
    p1_a: Tensor
    v_a: Tensor
    v_b: Tensor
    size_a: Tensor
    size_b: Tensor


class _Candidates(NamedTuple):
    """The candidate pixels of every limb: M lines a = const of C pixels across the band.

    lines, across: M and C; start_a: (Lv,) first line; start_b: (Lv, M) first b of each line;
    index_a: (1, M) or (Lv, M) line steps; index_b: (1, 1, C) or (Lv, 1, C) steps across;
    d_a: (Lv, M, 1), d_b: (Lv, M, C) the candidates' a - p0_a and b - p0_b.
    """

    lines: int
    across: int
    start_a: Tensor
    start_b: Tensor
    index_a: Tensor
    index_b: Tensor
    d_a: Tensor
    d_b: Tensor


def _draw_fields(out: Tensor, xy: Tensor, drawable: Tensor, limbs: Tensor, *,
                 hm_shape: Tuple[int, int], channels: int, channel0: int,
                 paf_sigma: float, compact: bool) -> None:
    """Add the drawable limbs' part affinity fields into `out`, averaged over people.

    Args:
        out: (N * channels * H * W,) the flat output; limb l's x field is channel
            channel0 + 2l, its y field the next one.
        xy: (N * P * J, 2) joint (x, y) on the grid, compute dtype (all finite unless compact).
        drawable: (N, P, J) bool, joints a limb may use (score >= score_thr, finite).
        limbs: (L, 2) long joint index pairs.
        hm_shape: (H, W).
        compact: draw the drawable limbs only (else all, the others rejected by the test, with
            windows of a fixed size; see _render).
    """
    seg = _limb_segments(xy, drawable, limbs, hm_shape=hm_shape, compact=compact)
    if seg is None:
        return
    cand = _candidates(seg, hm_shape=hm_shape, paf_sigma=paf_sigma, compact=compact)
    if cand is None:
        return
    margin = _on_margin(seg, cand, paf_sigma)
    address = _addresses(out, seg, cand, people=drawable.shape[1], hm_shape=hm_shape,
                         channels=channels, channel0=channel0)
    _add_mean_directions(out, seg, cand, margin, address, hw=hm_shape[0] * hm_shape[1],
                         compact=compact)


def _limb_segments(xy: Tensor, drawable: Tensor, limbs: Tensor, *, hm_shape: Tuple[int, int],
                   compact: bool) -> Optional[_LimbSegments]:
    """The limbs to draw (all of them unless compact) and their geometry; None: none."""
    height, width = hm_shape
    _, _, joints = drawable.shape
    num_limbs = limbs.shape[0]
    valid = drawable.index_select(2, limbs[:, 0]) & drawable.index_select(2, limbs[:, 1])
    valid = valid.reshape(-1)
    if compact:
        entry = valid.nonzero().squeeze(1)  # (Lv,) flat (frame, person, limb)
    else:
        entry = torch.arange(valid.numel(), device=xy.device)
    if entry.numel() == 0:
        return None
    person = entry // num_limbs  # frame * P + p
    limb = entry - person * num_limbs
    ends = xy.index_select(0, ((person * joints)[:, None] + limbs.index_select(0, limb))
                           .view(-1)).view(-1, 2, 2)  # (Lv, [p0, p1], [x, y])
    p0, p1 = ends[:, 0], ends[:, 1]
    # The dense formulation's expressions, so that the on/off decisions agree bit for bit.
    delta = p1 - p0
    length = delta.norm(dim=-1)  # (Lv,)
    unit = delta / length.clamp(min=1e-12)[..., None]  # (Lv, 2)
    degenerate = length == 0  # a zero-length limb covers nothing
    rejected = degenerate if compact else degenerate | ~valid
    # Work in (a, b) = (x, y) for limbs with |v_x| >= |v_y| (x is their major axis), (y, x) for
    # the others: a line a = const then crosses the band over at most C pixels.
    x_major = unit[:, 0].abs() >= unit[:, 1].abs()  # (Lv,); degenerate limbs: True
    geom = torch.cat((ends, unit[:, None]), dim=1)  # (Lv, [p0, p1, v], [x, y])
    geom = torch.where(x_major[:, None, None], geom, geom.flip(-1))  # (Lv, 3, [a, b])
    return _LimbSegments(
        entry=entry, person=person, limb=limb, unit=unit, length=length, degenerate=degenerate,
        rejected=rejected, x_major=x_major, p0_a=geom[:, 0, 0], p0_b=geom[:, 0, 1],
        p1_a=geom[:, 1, 0], v_a=geom[:, 2, 0], v_b=geom[:, 2, 1],
        size_a=torch.where(x_major, width, height), size_b=torch.where(x_major, height, width))


def _candidates(seg: _LimbSegments, *, hm_shape: Tuple[int, int], paf_sigma: float,
                compact: bool) -> Optional[_Candidates]:
    """The windows of candidate pixels around each limb's band; None: no line to draw."""
    height, width = hm_shape
    device, dtype = seg.unit.device, seg.unit.dtype
    size_a, size_b = seg.size_a, seg.size_b
    # Lines a = lo .. hi hold the band (the limb's extent grown by paf_sigma), clipped to the map.
    grow = paf_sigma + _BAND_SLACK
    lo = torch.ceil(torch.minimum(seg.p0_a, seg.p1_a) - grow).clamp_(min=0)
    hi = torch.minimum(torch.floor(torch.maximum(seg.p0_a, seg.p1_a) + grow), size_a - 1)
    if compact:
        lines = int((hi - lo).max().item()) + 1  # M: the longest extent in this batch
        if lines <= 0:
            return None
    else:
        lines = max(height, width)  # a bound known without waiting for the device
    # Every limb gets M lines, moved back onto the map where they would run past its end; the
    # extra lines are harmless: the exact test rejects them.
    start_a = torch.minimum(lo, size_a - lines).clamp_(min=0)
    across = int(math.floor(2.0 * (math.sqrt(2.0) * paf_sigma + _BAND_SLACK))) + 1  # C
    index_a = torch.arange(lines, device=device)[None]  # (1, M)
    index_b = torch.arange(across, device=device)[None, None]  # (1, 1, C)
    step_b = index_b.to(dtype)
    past_a = None
    if min(height, width) < max(lines, across):
        # Only on maps whose short side is shorter than a window: steps past the map's end get
        # the address of the last pixel, and the coordinate +inf in the test (which rejects it).
        past_a = index_a >= size_a[:, None]  # (Lv, M)
        index_a = torch.minimum(index_a, size_a[:, None] - 1)
        step_b = step_b.masked_fill(index_b >= size_b[:, None, None], math.inf)  # (Lv, 1, C)
        index_b = torch.minimum(index_b, size_b[:, None, None] - 1)
    d_a = start_a[:, None] + index_a - seg.p0_a[:, None]  # (Lv, M): a - p0_a of each line
    # On a line the band's centre is b = p0_b + (a - p0_a) v_b / v_a, its half-width
    # paf_sigma / |v_a| <= sqrt(2) paf_sigma (|v_a| >= 1/sqrt(2) on the major axis).
    v_a_safe = seg.v_a + seg.degenerate  # degenerate limbs: any non-zero value, they draw nothing
    centre = d_a * (seg.v_b / v_a_safe)[:, None] + seg.p0_b[:, None]  # (Lv, M)
    # The window's first b, kept on the map (NaN, from coordinates near the float range, to 0)
    # so that every candidate's address is in its limb's channel.
    start_b = torch.ceil(centre - (grow / v_a_safe.abs())[:, None]).nan_to_num_(0.0)
    start_b = torch.minimum(start_b.clamp_(min=0), (size_b - across).clamp_(min=0)[:, None])
    if past_a is not None:
        d_a = d_a.masked_fill(past_a, math.inf)
    d_b = (start_b[:, :, None] + step_b).sub_(seg.p0_b[:, None, None])  # (Lv, M, C): b - p0_b
    return _Candidates(lines=lines, across=across, start_a=start_a, start_b=start_b,
                       index_a=index_a, index_b=index_b, d_a=d_a[:, :, None], d_b=d_b)


def _on_margin(seg: _LimbSegments, cand: _Candidates, paf_sigma: float) -> Tensor:
    """(Lv, M, C): >= 0 exactly where a candidate pixel is on its limb (NaN: off).

    The dense test, 0 <= v.(p - p0) <= |p1 - p0| and |v_perp.(p - p0)| <= paf_sigma, in (a, b):
    v_a d_a + v_b d_b is the dense v_x dx + v_y dy up to the order of the (exact, commutative)
    sum, and |v_b d_a - v_a d_b| is the dense |v_y dx - v_x dy| or its negation.
    """
    v_a, v_b = seg.v_a[:, None, None], seg.v_b[:, None, None]
    along = (v_b * cand.d_b).add_(v_a * cand.d_a)
    off_axis = (v_a * cand.d_b).sub_(v_b * cand.d_a).abs_()
    reach = seg.length.masked_fill(seg.rejected, -1.0)[:, None, None]
    # on = (along >= 0) & (along <= reach) & (off_axis <= paf_sigma), as one comparison: a float
    # difference has the sign of the exact one, so min(...) >= 0 decides the same (and is NaN,
    # i.e. off, where a +inf step made along NaN).
    return torch.minimum(torch.minimum(along, reach - along), off_axis.neg_().add_(paf_sigma))


def _addresses(out: Tensor, seg: _LimbSegments, cand: _Candidates, *, people: int,
               hm_shape: Tuple[int, int], channels: int, channel0: int) -> Tensor:
    """(Lv, M, C) flat output address of every candidate pixel in its limb's x channel.

    The big (Lv, M, C) sum is in int32 where the output allows it: half the memory traffic of
    int64.
    """
    height, width = hm_shape
    index_dtype = torch.int32 if out.numel() < 2 ** 31 else torch.int64
    frame = seg.person // people
    base = (frame * channels + channel0 + 2 * seg.limb) * (height * width)  # (Lv,) x channel
    stride_a = torch.where(seg.x_major, 1, width)  # pixel = a * stride_a + b * stride_b
    stride_b = (width + 1) - stride_a
    line = ((cand.start_a.long()[:, None] + cand.index_a) * stride_a[:, None] + base[:, None]
            + cand.start_b.long() * stride_b[:, None])  # (Lv, M): address of (a, start_b)
    return (line.to(index_dtype)[:, :, None]
            + (cand.index_b * stride_b[:, None, None]).to(index_dtype))  # (Lv, M, C)


def _add_mean_directions(out: Tensor, seg: _LimbSegments, cand: _Candidates, margin: Tensor,
                         address: Tensor, *, hw: int, compact: bool) -> None:
    """Add each on-pixel's v / (people covering it) into the x and y channels: the mean.

    The people covering a pixel are counted in the x channel first (nothing else writes there),
    read back, reset, and then each person adds its share.
    """
    device, dtype = seg.unit.device, seg.unit.dtype
    if compact:  # only the on-pixels from here on
        hit = (margin >= 0).view(-1).nonzero().squeeze(1)
        x_index = address.view(-1).index_select(0, hit).long()  # (hits,)
        out.index_add_(0, x_index, torch.ones(x_index.shape[0], device=device, dtype=dtype))
        count = out.index_select(0, x_index)
        out.index_fill_(0, x_index, 0.0)
        value = seg.unit.index_select(0, hit // (cand.lines * cand.across)) / count[:, None]
    else:  # every candidate, weighted by on (0/1); the others add 0 wherever they point
        x_index = address.view(-1).long()  # (Lv * M * C,)
        on = (margin >= 0).view(-1).to(dtype)
        out.index_add_(0, x_index, on)
        count = out.index_select(0, x_index).clamp_(min=1.0)
        out.index_fill_(0, x_index, 0.0)
        value = ((on / count).view(-1, cand.lines * cand.across, 1) * seg.unit[:, None]).view(-1, 2)
    out.index_add_(0, x_index, value[:, 0])
    out.index_add_(0, x_index + hw, value[:, 1])


def _render(coords: Tensor, scores: Tensor, limbs: Optional[Tensor], hm_shape: Sequence[int], *,
            hm_sigma: Optional[float], paf_sigma: float, score_thr: float,
            compact: Optional[bool] = None) -> Tensor:
    """Heatmaps (unless hm_sigma is None) then PAFs (unless limbs is None), in one output.

    compact (default: on CPU): gather the drawable joints and limbs first and size the PAF
    windows to the longest limb, so that padded people and dropped joints cost nothing. Both
    need the data on the host (nonzero, .item()); on a GPU that would make the renderer wait for
    the work queued before it (the RGB stream), so there every entry is drawn with a 0/1 weight
    and windows sized for the whole map instead: more arithmetic, which the GPU does in
    parallel, and no synchronisation. The maps are the same either way.

    Returns:
        (N, J + 2L, H, W), (N, J, H, W) or (N, 2L, H, W) in coords.dtype.
    """
    height, width = int(hm_shape[0]), int(hm_shape[1])
    n_frames, _, joints = scores.shape
    if compact is None:
        compact = coords.device.type == "cpu"
    # Half precision (autocast, fp16 data) is drawn in float32, float64 stays float64.
    xy = coords.to(torch.float64 if coords.dtype == torch.float64 else torch.float32)
    xy = xy.reshape(-1, 2)  # (N * P * J, 2)
    # A joint with a NaN/inf coordinate is never drawn (in the dense maps it would poison its
    # channels even at score 0, as NaN * 0 = NaN).
    finite = torch.isfinite(xy[:, 0] + xy[:, 1])
    if not compact:  # every joint goes through the arithmetic: keep it finite
        xy = xy.masked_fill(~finite[:, None], 0.0)
    finite = finite.view(scores.shape)
    heat_channels = joints if hm_sigma is not None else 0
    if limbs is not None:
        limbs = limbs.to(device=coords.device, dtype=torch.long).reshape(-1, 2)
    channels = heat_channels + (2 * limbs.shape[0] if limbs is not None else 0)
    out = torch.zeros(n_frames, channels, height, width, device=coords.device, dtype=xy.dtype)
    flat = out.view(-1)
    if hm_sigma is not None:
        _draw_heatmaps(flat, xy, (scores > score_thr) & finite, hm_shape=(height, width),
                       channels=channels, sigma=hm_sigma, compact=compact)
    if limbs is not None:
        _draw_fields(flat, xy, (scores >= score_thr) & finite, limbs, hm_shape=(height, width),
                     channels=channels, channel0=heat_channels, paf_sigma=paf_sigma,
                     compact=compact)
    return out.to(coords.dtype)


@torch.no_grad()
def render_joint_heatmaps(coords: Tensor, scores: Tensor, hm_shape: Sequence[int], *,
                          sigma: float = 0.5, score_thr: float = 0.1) -> Tensor:
    """Gaussian joint heatmaps, summed over people and clipped at 1.

    Args:
        coords: (N, P, J, 2) joint (x, y) on the heatmap grid; pixel (i, j) is x = j, y = i.
        scores: (N, P, J) joint confidences; joints with score <= score_thr are not drawn.
        hm_shape: (H, W).

    Returns:
        (N, J, H, W) with value exp(-((x-jx)^2 + (y-jy)^2) / (2 sigma^2)), in coords.dtype.
    """
    return _render(coords, scores, None, hm_shape, hm_sigma=sigma, paf_sigma=1.0,
                   score_thr=score_thr)


@torch.no_grad()
def render_part_affinity_fields(coords: Tensor, scores: Tensor, limbs: Tensor,
                                hm_shape: Sequence[int], *, paf_sigma: float = 1.0,
                                score_thr: float = 0.1) -> Tensor:
    """Part affinity fields: the unit limb direction on the pixels a limb covers.

    A pixel p is on limb j0 -> j1 of a person when 0 <= v.(p - p0) <= |p1 - p0| and
    |v_perp.(p - p0)| <= paf_sigma, with v the unit direction and both joint scores >= score_thr.
    A zero-length limb covers nothing. Where several people's limbs cover a pixel the field is
    the mean of their directions.

    Args:
        coords: (N, P, J, 2) on the heatmap grid.
        scores: (N, P, J).
        limbs: (L, 2) long tensor of joint index pairs.
        hm_shape: (H, W).

    Returns:
        (N, 2*L, H, W), channels ordered limb 0 x, limb 0 y, limb 1 x, ...; in coords.dtype.
    """
    return _render(coords, scores, limbs, hm_shape, hm_sigma=None, paf_sigma=paf_sigma,
                   score_thr=score_thr)


@torch.no_grad()
def render_pose_maps(coords: Tensor, scores: Tensor, limbs: Tensor, hm_shape: Sequence[int], *,
                     hm_sigma: float = 0.5, paf_sigma: float = 1.0,
                     score_thr: float = 0.1, compact: Optional[bool] = None) -> Tensor:
    """Pose-network input: (N, P, J, 2), (N, P, J) -> (N, J + 2*L, H, W) = [heatmaps, PAFs].

    Both parts are drawn straight into one output tensor (no concatenation copy); the values
    are those of `render_joint_heatmaps` and `render_part_affinity_fields`. `compact` as in
    `_render`; False also on a CPU makes every shape depend on the input's shapes alone, as a
    graph export needs (`common.export`).
    """
    return _render(coords, scores, limbs, hm_shape, hm_sigma=hm_sigma, paf_sigma=paf_sigma,
                   score_thr=score_thr, compact=compact)
