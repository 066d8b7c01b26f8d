"""The soak case (tool/benchmarks/soak.py): train.py's loader and loop, with DataLoader workers
and the reused shared-memory batch slots, keep their memory flat. The full soak (thousands of
iterations) is opt-in (`python tool/benchmark.py --cases soak`); here a short one, and the
figures' arithmetic on made-up samples."""
import pytest

from tool import benchmark
from tool.benchmarks import soak

ITERS = 120


def _samples(leak_mib_per_iter: float, *, segments: int = 5, misses: int = 0):
    """Samples of a 1000-iteration run whose memory grows by `leak_mib_per_iter` per
    iteration from 100 MiB."""
    keys = ("main_rss_mib", "main_anon_mib", "workers_rss_mib", "total_private_mib",
            "shmem_rss_mib", "dev_shm_used_mib")
    return [dict({k: 100.0 + leak_mib_per_iter * i for k in keys}, iteration=i,
                 shm_segments=segments, pool_slots=6, pool_hits=i,
                 pool_misses=misses if i > 500 else 0) for i in range(10, 1010, 10)]


def test_growth_is_zero_when_flat_and_the_leak_rate_when_not():
    assert soak.growth(_samples(0.0), "main_rss_mib") == {"mib": 0.0, "mib_per_1000_iters": 0.0}
    leak = soak.growth(_samples(0.01), "main_rss_mib")  # 10 MiB per 1000 iterations
    assert leak["mib_per_1000_iters"] == pytest.approx(10.0)
    assert leak["mib"] == pytest.approx(5.0)  # from the second quarter's middle to the last's


def test_summary_flags_a_leak_accumulating_segments_and_missed_slots():
    flat = soak.summarize(_samples(0.0), iters=1000, workers=2, seconds=1.0)
    assert all(flat["targets"].values())
    assert flat["warm"]["main_rss_mib"] == 100.0 and flat["shm_segment_bound"] == 25
    # One tiny batch (2 clips of 2 x 3 x 16 x 16 float32, 12 KiB) kept per iteration.
    leaking = soak.summarize(_samples(12 / 1024), iters=1000, workers=2, seconds=1.0)
    assert leaking["growth"]["total_rss_mib"]["mib_per_1000_iters"] == pytest.approx(
        2 * 12000 / 1024)  # main and workers alike
    assert list(leaking["targets"].values()) == [False, True, True]
    bad = soak.summarize(_samples(0.0, segments=26, misses=3), iters=1000, workers=2,
                         seconds=1.0)
    assert list(bad["targets"].values()) == [True, False, False]
    assert bad["pool_misses_after_warmup"] == 3


def test_short_soak_keeps_shared_memory_bounded_and_memory_flat(tmp_path):
    """A short soak on train.py's loader (2 persistent workers, reused batch slots) and loop,
    over 15 epochs: every batch in a pool slot, torch's segments bounded, memory flat."""
    cfg = soak.soak_config(soak.soak_data(str(tmp_path), per_class=8), workers=2)
    samples = soak.soak(cfg, iters=ITERS, sample_every=4)
    summary = soak.summarize(samples, iters=ITERS, workers=2, seconds=0.0)
    assert [s["iteration"] for s in samples] == list(range(4, ITERS + 1, 4))
    assert all(s["workers"] == 2 for s in samples)
    assert summary["pool"] == {"pool_slots": 6, "pool_hits": ITERS, "pool_misses": 0}
    # The pool plus the batches on their way: never more than the pool's slots allow.
    assert max(s["shm_segments"] for s in samples) <= soak.segment_bound(6) == 25
    assert summary["end"]["shmem_rss_mib"] <= summary["warm"]["shmem_rss_mib"] + 1
    # The main process's RSS moves by up to 8 MiB between steps (the allocator); the quarters'
    # medians moved by at most 4 MiB in the soaks measured (docs/performance.md).
    assert abs(summary["growth"]["total_rss_mib"]["mib"]) < 12.0
    assert summary["targets"]["no batch missed a pool slot after warm-up"]


def test_soak_is_opt_in_and_needs_enough_iterations(tmp_path, capsys):
    assert "soak" in benchmark.CASES and "soak" not in benchmark.DEFAULT_CASES
    with pytest.raises(SystemExit):
        benchmark.main(["--cases", "soak", "--soak_iters", "10", "--output_dir", str(tmp_path)])
    assert capsys.readouterr().err.strip() == (
        "error: --soak_iters 10: a soak needs at least 40 iterations (a warm-up and four "
        "quarters to compare)")


def test_the_table_shows_the_soak_figures_and_its_targets():
    summary = soak.summarize(_samples(0.0), iters=1000, workers=2, seconds=12.5)
    text = benchmark.table({"soak": summary})
    assert "| soak: 1000 iterations, 2 workers | after warm-up | end |" in text
    assert "| main process RSS | 100.0 MiB | 100.0 MiB | +0.00 MiB |" in text
    assert ("torch shared-memory segments mapped: 5 after warm-up, at most 5 after it (bound "
            "25); batches that missed a pool slot after warm-up: 0; 12.50 s") in text
    assert "RSS and private memory growth < 8 MiB / 1000 iterations: yes" in text
