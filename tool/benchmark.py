"""The project's hot paths against their baselines, side by side in one process.

    python tool/benchmark.py                         # every case, CPU, the paper's shapes
    python tool/benchmark.py --cases pose_maps,inference --repeats 5
    python tool/benchmark.py --device cuda           # on a GPU (adds the precision case)
    python tool/benchmark.py --smoke                 # tiny sizes, seconds (the test suite runs it)
    python tool/benchmark.py --cases scaling         # opt-in: cost against the input's sizes, a plot
    python tool/benchmark.py --cases soak            # opt-in: memory flat over a long training run
    python tool/benchmark.py --cases shards          # opt-in: tar shards against the folders
    python tool/benchmark.py --cases video_loading   # opt-in: clips/s from video files vs JPEGs
    python tool/benchmark.py --cases export          # opt-in: onnxruntime against eager, CPU

Cases (see tool/benchmarks/): `pose_maps` (rendering against the dense formulation of
docs/data_format.md), `loading` (clips/s of the real loader against a plain per-frame
read/resize/warp), `train_step` (each stage's step and where its time goes), `inference` (test.py's evaluation against the
authors' way of running the same network), on a GPU `precision` (training clips/s in fp32
against mixed precision with channels_last; on the CPU only when named), and, only when named,
`scaling` (how rendering and the network's forward pass grow with batch size, frames, people
and heatmap size, with a plot), and, only when named, `soak` (train.py's loader and loop for
`--soak_iters` iterations: resident and shared memory after warm-up, docs/performance.md),
`shards` (packing the data into tar shards, and the loaders' clips/s from them against the
folders, docs/shards.md), `video_loading` (clips/s of the loader reading H.264 videos against
the JPEG folders they were made from, the same clips; disk sizes) and `export` (the ONNX file of
tool/export.py in onnxruntime against eager PyTorch, clips/s on the CPU; needs the export extra).
Each side of a comparison is timed alternately with the other, so a machine that changes speed
during the run affects both alike: read the ratios; absolute times mean something only on a
machine of your own.

Prints a table and writes every figure, with the machine and the command, to
`<output_dir>/result/benchmark.json` (`benchmark_<cases>.json` for a run of other cases);
`scaling` also draws `--plot` (default `<output_dir>/vis/benchmark_scaling.png`).
"""

import argparse
import importlib
import json
import os
import os.path as osp
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from common.errors import UsageError, exit_on_error
from common.io.provenance import describe_revision, git_revision

# What runs by default; `scaling` (about 3 minutes on 2 cores), `soak` (a few minutes) and
# `export` (an ONNX export of a minute or two, and the optional onnxruntime) only when --cases
# names them, and `precision` by default only on a GPU (a CPU without bf16 instructions has no
# use for it).
DEFAULT_CASES = ("pose_maps", "loading", "train_step", "inference")
CASES = DEFAULT_CASES + ("precision", "scaling", "soak", "shards", "video_loading", "export")
# The shortest soak whose growth means anything (--soak_iters).
MIN_SOAK_ITERS = 40
# The keyword arguments each case's `run` takes beside device, repeats and smoke.
CASE_ARGS: Dict[str, Tuple[str, ...]] = {
    "pose_maps": (), "loading": ("data_dir", "workers"), "train_step": ("data_dir",),
    "inference": ("data_dir", "workers"), "precision": ("data_dir",), "scaling": ("plot_path",),
    "soak": ("workers", "soak_iters"), "shards": ("data_dir", "workers"),
    "video_loading": ("data_dir", "workers"),
    "export": ("data_dir",)}


def default_cases(device: torch.device) -> Sequence[str]:
    """The cases a run without --cases runs on `device`."""
    return DEFAULT_CASES + (("precision",) if device.type == "cuda" else ())


def machine(device: torch.device) -> str:
    """The hardware the figures come from."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    cores = os.cpu_count()
    return (f"CPU {platform.processor() or platform.machine()}, {cores} core(s), "
            f"{torch.get_num_threads()} torch thread(s) (torch {torch.__version__})")


def _fmt_s(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(results: Dict[str, Any]) -> str:
    """The comparison as a markdown table, plus the training steps' breakdown, the precision
    sides and the scaling sweeps (each only when its case ran)."""
    lines = _comparison_lines(results)
    lines += _loading_lines(results.get("loading"))
    lines += _video_lines(results.get("video_loading"))
    lines += _inference_lines(results.get("inference"))
    lines += _train_step_lines(results.get("train_step"))
    lines += _precision_lines(results.get("precision"))
    lines += _soak_lines(results.get("soak"))
    lines += _packing_lines(results.get("shards"))
    lines += _export_lines(results.get("export"))
    scaling = results.get("scaling")
    if scaling:
        lines += ([""] if lines else []) + scaling_table(scaling)
    return "\n".join(lines).lstrip("\n") + "\n"


def _checks(targets: Dict[str, bool]) -> str:
    return ", ".join(f"{k}: {'yes' if v else '**no**'}" for k, v in targets.items())


def _comparison_lines(results: Dict[str, Any]) -> List[str]:
    """One row per compared case (per loading variant); none when no such case ran."""
    rows = []
    for name in CASES:
        r = results.get(name)
        if r is None or name in ("train_step", "precision", "scaling", "soak"):
            continue
        rows += r["rows"] if "rows" in r else [r]
    if not rows:  # e.g. --cases scaling: no comparison to show
        return []
    lines = ["| case | ours | baseline | ratio | peak memory (ours / baseline) | checks |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        bound = ">=" if r.get("memory_ratio_is_lower_bound") else ""
        memory = (f"{r['ours_peak_mib']:.1f} / {r['baseline_peak_mib']:.1f} MiB "
                  f"(x{bound}{r['memory_ratio']:.1f})" if "ours_peak_mib" in r else "-")
        if "ours_clips_per_s" in r:
            ours = f"{r['ours_clips_per_s']:.1f} clips/s"
            base = f"{r['baseline_clips_per_s']:.1f} clips/s"
            if "ours_item_s" in r:  # loading: the item path alone too
                ours += f" ({_fmt_s(r['ours_item_s'])}/clip alone)"
                base += f" ({_fmt_s(r['baseline_item_s'])}/clip alone)"
        else:
            ours, base = _fmt_s(r["ours_s"]), _fmt_s(r["baseline_s"])
        lines.append(f"| {r['case']} | {ours} | {base} | x{r['speedup']:.2f} | {memory} | "
                     f"{_checks(r['targets'])} |")
    return lines


def _loading_lines(loading: Optional[Dict[str, Any]]) -> List[str]:
    if not (loading and "ready_clips_per_s" in loading):
        return []
    ready = loading["ready_clips_per_s"]
    return ["", f"The loader itself, ready-made clips (nothing decoded) through the same "
                f"DataLoader: {ready['float32']:.0f} clips/s as float32 and "
                f"{ready['uint8']:.0f} as uint8 in fresh shared memory per batch, "
                f"{ready['float32, reused slots']:.0f} as float32 in the reused batch "
                f"slots ours use (the ceiling of any item path)"]


def _packing_lines(shards: Optional[Dict[str, Any]]) -> List[str]:
    if not (shards and "packing" in shards):
        return []
    return [""] + [f"Packing the {split} split into shards: {p['videos']} videos, {p['frames']} "
                   f"frames ({p['frame_file_mib']:.1f} MiB of frame files) in {p['shards']} "
                   f"shard(s) of {p['shard_mib']:.1f} MiB, {p['seconds']:.1f} s"
                   for split, p in shards["packing"].items()]


def _video_lines(video: Optional[Dict[str, Any]]) -> List[str]:
    if not video:
        return []
    diffs = ", ".join(f"{r['split']} {r['mean_abs_diff_255']:.2f}" for r in video["rows"])
    return ["", f"Frames on disk: {video['jpeg_mib']:.1f} MiB of JPEG folders, "
                f"{video['video_mib']:.1f} MiB of H.264 videos "
                f"(x{video['jpeg_mib'] / video['video_mib']:.1f} smaller); mean |video - JPEG| "
                f"of the first clip, in 1/255: {diffs}"]


def _inference_lines(inference: Optional[Dict[str, Any]]) -> List[str]:
    if not (inference and "conv_floor_s" in inference):
        return []
    lines = ["", f"test.py evaluation against the convolution floor "
                 f"({inference['conv_gflops_per_clip']:.1f} GFLOP of convolutions per clip at "
                 f"the best {inference['peak_conv_gflops_per_s']:.0f} GFLOP/s this device "
                 f"reaches on ResNet's 3x3 shapes = {_fmt_s(inference['conv_floor_s'])} "
                 f"per clip): ours {inference['ours_vs_floor']:.2f} x the floor; no fp32 "
                 f"evaluation can beat the baseline by more than "
                 f"x{inference['best_possible_speedup']:.2f} here"]
    if inference.get("network_steps"):
        lines += ["", "| the network alone, one batch in memory | per clip | x the original |",
                  "|---|---|---|"]
        lines += [f"| {row['step']} | {_fmt_s(row['per_clip_s'])} | "
                  f"x{row['vs_original']:.2f} |" for row in inference["network_steps"]]
    return lines


def _train_step_lines(step: Optional[Dict[str, Any]]) -> List[str]:
    if not step:
        return []
    lines = ["", "| training step | clips/s | step | loading | rendering | backbones | rest |"
                 " pose maps rendered per step |",
             "|---|---|---|---|---|---|---|---|"]
    for row in step["rows"]:
        share = row["share"]
        lines.append(
            f"| {row['stage']} | {row['clips_per_s']:.2f} | {_fmt_s(row['step_s'])} | "
            f"{share['loading']:.1%} | {share['rendering']:.2%} | {share['backbones']:.1%} | "
            f"{share['rest']:.1%} | {row['renders_per_step']:g} |")
    return lines + ["", f"rgb+pose step / (rgb_only + pose_only steps) = "
                        f"{step['fused_step_vs_single_sum']:.2f}; {_checks(step['targets'])}"]


def _precision_lines(mixed: Optional[Dict[str, Any]]) -> List[str]:
    if not mixed:
        return []
    lines = ["", "| training, precision | batch | fp32 clips/s | mixed clips/s | mixed / fp32 |"
                 " mixed |", "|---|---|---|---|---|---|"]
    lines += [f"| {row['stage']} | {row['batch']} | {row['fp32_clips_per_s']:.2f} | "
              f"{row['mixed_clips_per_s']:.2f} | x{row['speedup']:.2f} | {row['mixed']} |"
              for row in mixed["rows"]]
    checks = _checks(mixed["targets"])
    return lines + ["", f"PyTorch defaults: {mixed['defaults']}" + (f"; {checks}" if checks else
                                                                    " (targets: GPU only)")]


def _soak_lines(soak: Optional[Dict[str, Any]]) -> List[str]:
    if not soak:
        return []
    warm, end, grow = soak["warm"], soak["end"], soak["growth"]
    lines = ["", f"| soak: {soak['iters']} iterations, {soak['workers']} workers | after warm-up "
                 f"| end | growth / 1000 iterations |", "|---|---|---|---|"]
    for key, label in (("main_rss_mib", "main process RSS"), ("workers_rss_mib", "workers' RSS"),
                       ("total_private_mib", "private memory, all processes"),
                       ("shmem_rss_mib", "shared memory resident")):
        lines.append(f"| {label} | {warm[key]:.1f} MiB | {end[key]:.1f} MiB | "
                     f"{grow[key]['mib_per_1000_iters']:+.2f} MiB |")
    return lines + ["", f"torch shared-memory segments mapped: {warm['shm_segments']} after "
                        f"warm-up, at most {soak['max_shm_segments']} after it (bound "
                        f"{soak['shm_segment_bound']}); batches that missed a pool slot after "
                        f"warm-up: {soak['pool_misses_after_warmup']}; "
                        f"{_fmt_s(soak['seconds'])}; {_checks(soak['targets'])}"]


def _export_lines(export: Optional[Dict[str, Any]]) -> List[str]:
    if not export:
        return []
    return ["", f"export: ours = onnxruntime, baseline = eager PyTorch as test.py runs it, "
                f"{export['threads']} thread(s) each; eager with the graph's fixed-shape "
                f"pose-map renderer: {export['eager_fixed_renderer_clips_per_s']:.2f} clips/s; "
                f"the export (tool/export.py's steps) took "
                f"{_fmt_s(export['export_s'])}; largest |probability difference| "
                f"{export['max_abs_prob_diff']:.1e}"]


def _per_batch(point: Dict[str, Any], side: str) -> str:
    """A point's time per batch and per clip, e.g. '12.30 ms (1.54 ms/clip)'."""
    seconds = point.get(f"{side}_s")
    if seconds is None:
        return "-"
    return f"{_fmt_s(seconds)} ({_fmt_s(point[f'{side}_per_clip_s'])}/clip)"


def scaling_table(scaling: Dict[str, Any]) -> List[str]:
    """The scaling sweeps as markdown lines: one row per point, times per batch (per clip)."""
    lines = ["| scaling: sweep | value | ours (rendering) | dense (rendering) | dense / ours | "
             "network forward |",
             "|---|---|---|---|---|---|"]
    for sweep in scaling["sweeps"]:
        for i, p in enumerate(sweep["points"]):
            dense = (_per_batch(p, "dense") if p["dense_skipped"] is None
                     else f"skipped ({p['dense_estimate_gib']:.1f} GiB intermediate)")
            speedup = f"x{p['speedup']:.1f}" if p["speedup"] is not None else "-"
            lines.append(f"| {sweep['label'] if i == 0 else ''} | {p['value']} | "
                         f"{_per_batch(p, 'ours')} | {dense} | {speedup} | "
                         f"{_per_batch(p, 'network')} |")
    worst = scaling["max_abs_diff"]
    lines += ["", f"Each sweep varies one parameter {scaling['sweeps'][0]['base']}; the network "
                  f"forward (rgb+pose, BatchNorm folded, ours rendering inside) only on the frames "
                  f"and batch sweeps. Largest |ours - dense|: "
                  f"{'-' if worst is None else f'{worst:.1e}'}; plot: {scaling['plot'] or '-'}"]
    return lines


def run_cases(cases: Sequence[str], *, device: torch.device, repeats: int, smoke: bool,
              output_dir: str, workers: int, plot_path: Optional[str] = None,
              soak_iters: Optional[int] = None) -> Dict[str, Any]:
    """Run the named cases; returns {case: its figures}. `plot_path`: scaling's PNG (None:
    no plot); `soak_iters`: the soak's iterations (None: its default)."""
    from tool.benchmarks.data import benchmark_data

    results: Dict[str, Any] = {}
    available: Dict[str, Any] = {"workers": workers, "plot_path": plot_path, "data_dir": None,
                                 "soak_iters": soak_iters}
    for name in cases:
        start = time.perf_counter()
        if "data_dir" in CASE_ARGS[name] and available["data_dir"] is None:
            available["data_dir"] = benchmark_data(output_dir, smoke=smoke)
        # Imported when run: a case's imports (the baselines, the synthetic data) cost start-up.
        case = importlib.import_module(f"tool.benchmarks.{name}")
        extra = {arg: available[arg] for arg in CASE_ARGS[name]}
        results[name] = case.run(device=device, repeats=repeats, smoke=smoke, **extra)
        results[name]["seconds"] = time.perf_counter() - start
        print(f"[benchmark] {name} done in {results[name]['seconds']:.0f} s", flush=True)
    return results


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=None,
                        help=f"comma list of {', '.join(CASES)} (default: all but scaling, and "
                             "precision only on a GPU)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per side (default 10 for pose maps and loading, "
                             "3 for the training step and inference, at most 5 per point for "
                             "scaling, each point cut to about 1.5 s a side; 1 in --smoke)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of ours")
    parser.add_argument("--soak_iters", type=int, default=None,
                        help="iterations of the soak case (default 3000; 60 in --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check that it runs")
    parser.add_argument("--output_dir", default=osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), "output"))
    parser.add_argument("--plot", default=None,
                        help="the scaling case's PNG (default: <output_dir>/vis/"
                             "benchmark_scaling.png)")
    args = parser.parse_args(argv)
    plot_path = args.plot or osp.join(args.output_dir, "vis", "benchmark_scaling.png")
    device = torch.device(args.device)
    cases: List[str] = ([c.strip() for c in args.cases.split(",") if c.strip()]
                        if args.cases is not None else list(default_cases(device)))
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise UsageError(f"--cases: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.soak_iters is not None and args.soak_iters < MIN_SOAK_ITERS:
        raise UsageError(f"--soak_iters {args.soak_iters}: a soak needs at least "
                         f"{MIN_SOAK_ITERS} iterations (a warm-up and four quarters to compare)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: no GPU is visible; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: Dict[str, Any] = {}
    for name in cases:
        repeats = args.repeats or (1 if args.smoke else 10 if name in ("pose_maps", "loading")
                                   else 5 if name == "scaling" else 3)
        results.update(run_cases([name], device=device, repeats=repeats, smoke=args.smoke,
                                 output_dir=args.output_dir, workers=args.workers,
                                 plot_path=plot_path, soak_iters=args.soak_iters))
    text = table(results)
    print()
    print(f"Machine: {machine(device)}; code: git {describe_revision(git_revision())}")
    print(text)
    # A run of some cases does not overwrite the full run's figures.
    name = ("benchmark" if tuple(cases) == tuple(default_cases(device))
            else "benchmark_" + "_".join(cases))
    path = osp.join(args.output_dir, "result", name + ".json")
    os.makedirs(osp.dirname(path), exist_ok=True)
    report = {"machine": machine(device), "device": str(device), "smoke": args.smoke,
              "command": "python tool/benchmark.py " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv),
              "git": git_revision(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "results": results, "table": text}
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(f"written: {path}")
    if results.get("scaling", {}).get("plot"):
        print(f"written: {results['scaling']['plot']}")
    return report


if __name__ == "__main__":
    main()
