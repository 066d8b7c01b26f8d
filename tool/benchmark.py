"""The project's hot paths against their baselines, side by side in one process.

    python tool/benchmark.py                         # every case, CPU, the paper's shapes
    python tool/benchmark.py --cases pose_maps,inference --repeats 5
    python tool/benchmark.py --device cuda           # on a GPU
    python tool/benchmark.py --smoke                 # tiny sizes, seconds (the test suite runs it)

Cases (see tool/benchmarks/): `pose_maps` (rendering against the dense formulation of SPEC.md),
`loading` (clips/s of the real loader against a plain per-frame read/resize/warp), `train_step`
(each stage's step and where its time goes), `inference` (test.py's evaluation against the
authors' way of running the same network). Each side of a comparison is timed alternately with
the other, so a machine that changes speed during the run affects both alike: read the ratios;
absolute times mean something only on a machine of your own.

Prints a table and writes every figure, with the machine and the command, to
`<output_dir>/result/benchmark.json`.
"""
import os.path as osp, sys; sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E401,E702

import argparse
import json
import os
import platform
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from common.errors import UsageError, exit_on_error
from common.provenance import describe_revision, git_revision

CASES = ("pose_maps", "loading", "train_step", "inference")


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
    """The comparison as a markdown table, plus the training steps' breakdown."""
    lines = ["| case | ours | baseline | ratio | peak memory (ours / baseline) | checks |",
             "|---|---|---|---|---|---|"]
    rows = []
    for name in CASES:
        r = results.get(name)
        if r is None or name == "train_step":
            continue
        rows += r["rows"] if name == "loading" else [r]
    for r in rows:
        bound = ">=" if r.get("memory_ratio_is_lower_bound") else ""
        memory = (f"{r['ours_peak_mib']:.1f} / {r['baseline_peak_mib']:.1f} MiB "
                  f"(x{bound}{r['memory_ratio']:.1f})" if "ours_peak_mib" in r else "-")
        checks = ", ".join(f"{k}: {'yes' if v else '**no**'}" for k, v in r["targets"].items())
        if "ours_clips_per_s" in r:
            ours = f"{r['ours_clips_per_s']:.1f} clips/s"
            base = f"{r['baseline_clips_per_s']:.1f} clips/s"
            if "ours_item_s" in r:  # loading: the item path alone too
                ours += f" ({_fmt_s(r['ours_item_s'])}/clip alone)"
                base += f" ({_fmt_s(r['baseline_item_s'])}/clip alone)"
        else:
            ours, base = _fmt_s(r["ours_s"]), _fmt_s(r["baseline_s"])
        lines.append(f"| {r['case']} | {ours} | {base} | x{r['speedup']:.2f} | {memory} | "
                     f"{checks} |")
    step = results.get("train_step")
    if step:
        lines += ["", "| training step | clips/s | step | loading | rendering | backbones | rest |"
                      " pose maps rendered per step |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in step["rows"]:
            share = row["share"]
            lines.append(
                f"| {row['stage']} | {row['clips_per_s']:.2f} | {_fmt_s(row['step_s'])} | "
                f"{share['loading']:.1%} | {share['rendering']:.2%} | {share['backbones']:.1%} | "
                f"{share['rest']:.1%} | {row['renders_per_step']:g} |")
        checks = ", ".join(f"{k}: {'yes' if v else '**no**'}" for k, v in step["targets"].items())
        lines += ["", f"rgb+pose step / (rgb_only + pose_only steps) = "
                      f"{step['fused_step_vs_single_sum']:.2f}; {checks}"]
    return "\n".join(lines) + "\n"


def run_cases(cases: Sequence[str], *, device: torch.device, repeats: int, smoke: bool,
              output_dir: str, workers: int) -> Dict[str, Any]:
    """Run the named cases; returns {case: its figures}."""
    from tool.benchmarks.data import benchmark_data

    results: Dict[str, Any] = {}
    data_dir = None
    for name in cases:
        start = time.perf_counter()
        if name in ("loading", "train_step", "inference") and data_dir is None:
            data_dir = benchmark_data(output_dir, smoke=smoke)
        if name == "pose_maps":
            from tool.benchmarks import pose_maps
            results[name] = pose_maps.run(device=device, repeats=repeats, smoke=smoke)
        elif name == "loading":
            from tool.benchmarks import loading
            results[name] = loading.run(device=device, repeats=repeats, smoke=smoke,
                                        data_dir=data_dir, workers=workers)
        elif name == "train_step":
            from tool.benchmarks import train_step
            results[name] = train_step.run(device=device, repeats=repeats, smoke=smoke,
                                           data_dir=data_dir)
        elif name == "inference":
            from tool.benchmarks import inference
            results[name] = inference.run(device=device, repeats=repeats, smoke=smoke,
                                          data_dir=data_dir, workers=workers)
        results[name]["seconds"] = time.perf_counter() - start
        print(f"[benchmark] {name} done in {results[name]['seconds']:.0f} s", flush=True)
    return results


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma list of {', '.join(CASES)} (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per side (default 10 for pose maps and loading, "
                             "3 for the training step and inference; 1 in --smoke)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of ours")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check that it runs")
    parser.add_argument("--output_dir", default=osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), "output"))
    args = parser.parse_args(argv)
    cases: List[str] = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise UsageError(f"--cases: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: no GPU is visible; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: Dict[str, Any] = {}
    for name in cases:
        repeats = args.repeats or (1 if args.smoke else 10 if name in ("pose_maps", "loading")
                                   else 3)
        results.update(run_cases([name], device=device, repeats=repeats, smoke=args.smoke,
                                 output_dir=args.output_dir, workers=args.workers))
    text = table(results)
    print()
    print(f"Machine: {machine(device)}; code: git {describe_revision(git_revision())}")
    print(text)
    path = osp.join(args.output_dir, "result", "benchmark.json")
    os.makedirs(osp.dirname(path), exist_ok=True)
    report = {"machine": machine(device), "device": str(device), "smoke": args.smoke,
              "command": "python tool/benchmark.py " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv),
              "git": git_revision(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "results": results, "table": text}
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(f"written: {path}")
    return report


if __name__ == "__main__":
    main()
