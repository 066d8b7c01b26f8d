"""torchrun: 2 CPU processes (gloo) train and test; the test equals the 1-process run exactly.

Also the samplers that make it so: test batches split among ranks without padding, training
shards that resume mid-epoch.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from common.runtime.distributed import DistInfo, init_distributed, torchrun_env
from common.errors import UsageError
from data.samplers import ShardedBatchSampler, TrainSampler, item_stream
from tests.fixtures_data import write_kinetics

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.parametrize("size", [0, 1, 7, 18, 23])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sharded_batches_cover_every_item_once_in_order(size, world):
    batch = 4
    single = list(ShardedBatchSampler(size, batch))
    assert single == [list(range(s, min(s + batch, size))) for s in range(0, size, batch)]
    shards = [list(ShardedBatchSampler(size, batch, rank=r, world_size=world))
              for r in range(world)]
    # Rank order concatenated is the single-process order: same batches, nothing padded.
    assert [b for shard in shards for b in shard] == single
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_train_sampler_shards_skip_and_streams():
    data = list(range(9))
    ranks = [TrainSampler(data, seed=3, rank=r, world_size=2) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(4)
    items = [list(s) for s in ranks]
    # DistributedSampler's padding: 10 items for 9, every index at least once.
    assert len(items[0]) == len(items[1]) == 5
    assert sorted({i for shard in items for i, _ in shard}) == data
    assert {stream for shard in items for _, stream in shard} == {item_stream(3, 4)}
    # Resuming after 2 batches of 2 skips exactly those items.
    ranks[0].set_start(4)
    assert list(ranks[0]) == items[0][4:] and len(ranks[0]) == 1
    ranks[0].set_epoch(5)  # a new epoch starts from its beginning, with another order
    assert len(list(ranks[0])) == 5 and item_stream(3, 5) != item_stream(3, 4)
    # --max_iters_per_epoch: the pass stops after its last batch (with or without a start).
    whole = list(ranks[0])
    ranks[0].set_stop(4)
    assert list(ranks[0]) == whole[:4] and len(ranks[0]) == 4
    ranks[0].set_start(2)
    assert list(ranks[0]) == whole[2:4] and len(ranks[0]) == 2
    ranks[0].set_start(4)
    assert list(ranks[0]) == [] and len(ranks[0]) == 0
    ranks[0].set_stop(99)  # past the shard: its end
    assert list(ranks[0]) == whole[4:] and len(ranks[0]) == 1
    with pytest.raises(ValueError, match="negative"):
        ranks[0].set_stop(-1)
    ranks[0].set_epoch(6)  # a new epoch: the whole shard again
    assert len(list(ranks[0])) == len(ranks[0]) == 5
    # The order is a function of (seed, epoch) alone.
    first, second = TrainSampler(data, seed=3), TrainSampler(data, seed=3)
    first.set_epoch(2), second.set_epoch(2)
    assert list(first) == list(second)


def test_outside_torchrun_is_single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_env() is None
    info, device, ids = init_distributed("cpu")
    assert info == DistInfo() and not info.enabled and info.is_main
    assert device.type == "cpu" and ids == []


def test_torchrun_with_absent_gpus_is_an_error(monkeypatch):
    # A machine without GPUs (whatever this one has).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(UsageError, match="GPU 0 not available"):
        init_distributed("0,1")


def run(args, env=None):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_two_process_train_and_test_equal_one_process(tmp_path):
    root = tmp_path
    # 9 videos x 2 clips = 18 clips in batches of 4: the ranks get 3 and 2 batches, the
    # last batch half full, and an odd number of videos.
    write_kinetics(str(root), num_classes=3, videos_per_class=3, frame_num=12,
                   frame_size=(32, 48), subset="Tiny")
    out = root / "out"
    common = ["--data_dir", str(root), "--output_dir", str(out), "--subset", "Tiny",
              "--frame_per_seg", "2", "--frame_interval", "2", "--video_shape", "32",
              "--input_img_shape", "32,32", "--input_hm_shape", "8,8", "--pretrained", "none",
              "--num_thread", "0", "--test_infer_num", "2", "--test_batch_size", "4",
              "--progress_bar", "false", "--seed", "0", "--train_batch_size", "2"]
    # The same thread count in every process, so that the 1- and 2-process runs compute alike.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    trained = run([*torchrun, "main/train.py", "--mode", "pose_only", "--end_epoch", "1",
                   *common], env)
    assert "torchrun: rank 0 of 2" in trained.stdout and "backend gloo" in trained.stdout
    assert "[rank 1]" not in trained.stdout  # rank 1 logs warnings only
    snap = torch.load(out / "model_dump" / "snapshot_0.pth.tar", weights_only=True)
    # The authors' layout: a DDP snapshot is interchangeable with theirs and DataParallel's.
    assert all(k.startswith("module.") and not k.startswith("module.module.")
               for k in snap["network"])
    assert snap["world_size"] == 2 and len(snap["rng"]) == 2
    # Rank 0 alone wrote the log.
    assert os.listdir(out / "log") == ["train_pose_only.txt"]

    test_args = ["main/test.py", "--mode", "pose_only", "--test_epoch", "0", *common]
    two = run([*torchrun, *test_args], env)
    result_two = (out / "result" / "kinetics_result.json").read_bytes()
    metrics_two = json.loads((out / "result" / "kinetics_metrics.json").read_text())
    one = run(test_args, env)
    result_one = (out / "result" / "kinetics_result.json").read_bytes()
    metrics_one = json.loads((out / "result" / "kinetics_metrics.json").read_text())

    assert result_two == result_one
    assert len(json.loads(result_one)) == 9  # every video once, none lost to padding
    for key in ("top1", "top5", "videos", "mean_class_accuracy", "clip_top1", "report"):
        assert metrics_two[key] == metrics_one[key], key
    assert metrics_one["report"]["clips"] == 18 and metrics_one["videos"] == 9
    def printed(proc):  # test.py's own lines (not the timestamped log lines)
        lines = proc.stdout.splitlines()
        return lines[lines.index("Evaluation start..."):][:8]

    assert printed(two) == printed(one) and printed(one)[1].startswith("Top-1 accuracy: ")
    assert "3 batches on this rank" in two.stdout


def test_two_processes_with_workers_in_reused_batch_slots_equal_one_process(tmp_path):
    # rgb_only: each rank's workers write the clips into that rank's shared-memory batch slots
    # (data/batch_pool.py); the 2-process result file is the 1-process, 0-worker one.
    root = tmp_path
    write_kinetics(str(root), num_classes=3, videos_per_class=3, frame_num=12,
                   frame_size=(32, 48), subset="Tiny")
    out = root / "out"
    common = ["--mode", "rgb_only", "--data_dir", str(root), "--output_dir", str(out),
              "--subset", "Tiny", "--frame_per_seg", "2", "--frame_interval", "2",
              "--video_shape", "32", "--input_img_shape", "32,32", "--input_hm_shape", "8,8",
              "--pretrained", "none", "--test_infer_num", "2", "--test_batch_size", "4",
              "--progress_bar", "false", "--seed", "0", "--train_batch_size", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run(["main/train.py", "--end_epoch", "1", *common, "--num_thread", "0"], env)
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = run([*torchrun, "main/test.py", "--test_epoch", "0", *common, "--num_thread", "2"],
              env)
    assert "reused shared-memory batch slots" in two.stdout
    result_two = (out / "result" / "kinetics_result.json").read_bytes()
    run(["main/test.py", "--test_epoch", "0", *common, "--num_thread", "0"], env)
    assert (out / "result" / "kinetics_result.json").read_bytes() == result_two
