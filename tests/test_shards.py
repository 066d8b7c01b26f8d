"""Shard sets (tool/make_shards.py, data/shards/): the same items as the folder, read from a
folder or a URL, each torchrun rank its own shards, exact mid-epoch resume, one-line errors for
damaged shards, and test.py's result file byte for byte."""
import json
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

from common.errors import UsageError
from common.train import run as training_run
from data.registry import build_dataset
from data.shards.layout import ShardError
from data.shards.sampler import ShardTrainSampler, shard_train_sampler
from main import test as test_entry
from main import train as train_entry
from tests.fixtures_data import make_cfg, write_kinetics, write_mimetics, write_ntu
from tool import make_shards

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLIP = ["--frame_per_seg", "2", "--frame_interval", "2"]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """9 videos per split, shards of 2 videos (5 shards: 2, 2, 2, 2, 1)."""
    root = tmp_path_factory.mktemp("shards")
    write_kinetics(str(root), num_classes=3, videos_per_class=3, frame_num=12,
                   frame_size=(32, 48), subset="Tiny")
    os.remove(osp.join(root, "Kinetics", "data", "frames", "val_256", "action_01",
                       "ytval004_e", "000003.jpg"))  # a missing frame: skipped, as from the folder
    with open(osp.join(root, "Kinetics", "data", "kinetics-skeleton", "kinetics_val",
                       "ytval007_h.json"), "w") as f:
        f.write('{"data": [{"frame_index": "one"}]}')  # an unreadable pose file: zeroed poses
    for split in ("train", "test"):
        line = make_shards.main(["--split", split, "--out", str(root / f"sh_{split}"),
                                 "--data_dir", str(root), "--subset", "Tiny",
                                 "--shard_samples", "2", *CLIP])
        assert line.startswith("9 videos, ") and " in 5 shard(s), " in line
    return root


def cfg_for(root, **extra):
    return make_cfg(root, subset="Tiny", output_dir=str(root / "out"), **extra)


def assert_same_item(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        elif key != "problems":
            assert a[key] == b[key], key
    assert [(p.reason, p.action) for p in a["problems"]] == \
        [(p.reason, p.action) for p in b["problems"]]


@pytest.mark.parametrize("url", [False, True])
def test_items_equal_the_folders(packed, url):
    for split, keys in (("train", [(i, 77) for i in range(9)]), ("test", range(90))):
        location = str(packed / f"sh_{split}")
        if url:
            location = "file://" + location  # fetched into the cache, as from an object store
        cfg = cfg_for(packed, shards=location, shard_cache=str(packed / f"cache_{url}"))
        shards = build_dataset(cfg, "Kinetics", split)
        folder = build_dataset(cfg_for(packed), "Kinetics", split)
        shards.prepare(range(5))
        assert len(shards) == len(folder) and shards.class_num == folder.class_num == 3
        assert shards.skipped == folder.skipped and shards.annotated == folder.annotated
        for key in keys:
            assert_same_item(shards[key], folder[key])
    # The video with a missing frame gives the same skipped clips from both, the one with an
    # unreadable pose file the same zeroed poses (`assert_same_item` compares the problems).
    skipped = [i for i in range(90) if "label" not in folder[i]]
    assert skipped and all("label" not in shards[i] for i in skipped)
    assert [p.reason for p in shards[70]["problems"]] == ["bad_pose_file"]
    if url:
        assert sorted(os.listdir(packed / "cache_True" / os.listdir(packed / "cache_True")[0])
                      ) == ["index.json"] + [f"shard-{s:06d}.tar" for s in range(5)]


@pytest.mark.parametrize("dataset", ["Mimetics", "NTU"])
def test_mimetics_and_ntu_items_equal_the_folders(tmp_path, dataset):
    (write_mimetics if dataset == "Mimetics" else write_ntu)(str(tmp_path), num_classes=2,
                                                              videos_per_class=2, frame_num=10)
    make_shards.main(["--split", "test", "--out", str(tmp_path / "sh"), "--dataset", dataset,
                      "--data_dir", str(tmp_path), "--shard_samples", "3", *CLIP])
    cfg = make_cfg(tmp_path, dataset=dataset)
    folder = build_dataset(cfg, dataset, "test")
    shards = build_dataset(make_cfg(tmp_path, dataset=dataset, shards=str(tmp_path / "sh")),
                           dataset, "test")
    shards.prepare(range(2))
    assert len(shards) == len(folder) == 40
    for index in range(len(folder)):
        assert_same_item(shards[index], folder[index])


def test_tars_are_plain_webdataset_tars(packed):
    """Any tar tool reads them; each sample's members follow each other and share a key
    without a dot (how WebDataset groups members into samples)."""
    keys = []
    for shard in range(5):
        with tarfile.open(packed / "sh_train" / f"shard-{shard:06d}.tar") as tar:
            names = tar.getnames()
        for name in names:
            key, ext = name.split(".", 1)
            if not keys or keys[-1] != key:
                assert key not in keys  # never split
                keys.append(key)
            assert ext in ("json", "poses.npz") or ext.endswith(".jpg")
    assert keys == [f"{i:08d}" for i in range(9)]
    meta = json.loads(tarfile.open(packed / "sh_train" / "shard-000000.tar")
                      .extractfile("00000000.json").read())
    assert meta["frame_num"] == 12 and meta["label"] == 0


def test_each_rank_takes_its_own_shards_in_equal_numbers(packed, tmp_path):
    location = "file://" + str(packed / "sh_train")
    orders = []
    for rank in range(2):
        cache = tmp_path / f"rank{rank}"
        cfg = cfg_for(packed, shards=location, shard_cache=str(cache))
        dataset = build_dataset(cfg, "Kinetics", "train")
        sampler = shard_train_sampler(dataset, seed=4, rank=rank, world_size=2)
        sampler.set_epoch(1)
        items = [i for i, _ in sampler]
        # Rank 0: shards 0, 2, 4 (5 videos); rank 1: shards 1, 3 (4 videos, one again).
        own = {0: {0, 1, 4, 5, 8}, 1: {2, 3, 6, 7}}[rank]
        assert set(items) == own and len(items) == len(sampler) == 5
        fetched = sorted(os.listdir(cache / os.listdir(cache)[0]))
        assert fetched == ["index.json"] + [f"shard-{s:06d}.tar" for s in range(rank, 5, 2)]
        again = ShardTrainSampler(dataset, item_shards=[s["shard"] for s in
                                                        dataset.store.index.samples],
                                  shard_count=5, seed=4, rank=rank, world_size=2)
        again.set_epoch(1)
        assert [i for i, _ in again] == items  # the same seed, the same order
        again.set_epoch(2)
        assert [i for i, _ in again] != items
        orders.append(items)
    with pytest.raises(Exception, match="5 shard\\(s\\) for 6 processes"):
        shard_train_sampler(dataset, seed=4, rank=0, world_size=6)


def train_args(root, out, *extra):
    return ["--mode", "rgb_only", "--data_dir", str(root), "--output_dir", str(out),
            "--subset", "Tiny", *CLIP, "--video_shape", "32", "--input_img_shape", "32,32",
            "--input_hm_shape", "8,8", "--train_batch_size", "2", "--pretrained", "none",
            "--num_thread", "0", "--progress_bar", "false", "--lr", "0.05", *extra]


def test_mid_epoch_resume_from_shards_is_exact(packed, tmp_path, monkeypatch):
    shards = ("--shards", str(packed / "sh_train"), "--seed", "1", "--end_epoch", "2")
    whole = tmp_path / "whole"
    monkeypatch.setattr(training_run, "remove_partial_snapshots", lambda *a, **k: [])
    train_entry.main(train_args(packed, whole, *shards, "--save_every", "1"))
    parts = tmp_path / "parts"
    shutil.copytree(whole / "model_dump", parts / "model_dump")
    for name in os.listdir(parts / "model_dump"):  # the run died after epoch 1, iteration 2
        if name.startswith("snapshot_1") and name != "snapshot_1_iter2.pth":
            os.remove(parts / "model_dump" / name)
    monkeypatch.undo()
    train_entry.main(train_args(packed, parts, *shards, "--continue"))
    a, b = (torch.load(d / "model_dump" / "snapshot_1.pth.tar", weights_only=True)
            for d in (whole, parts))
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])
    log = open(parts / "log" / "train_rgb_only.txt").read()
    assert "training continues at epoch 1 after 2 iterations" in log
    assert "rank 0 reads 5 of 5 shard(s)" in log


def test_test_py_result_file_is_the_folders_byte_for_byte(packed, tmp_path):
    out = tmp_path / "out"
    common = ["--mode", "pose_only", "--data_dir", str(packed), "--output_dir", str(out),
              "--subset", "Tiny", *CLIP, "--video_shape", "32", "--input_img_shape", "32,32",
              "--input_hm_shape", "8,8", "--num_thread", "0", "--progress_bar", "false",
              "--test_infer_num", "3", "--test_batch_size", "4", "--gpu", "cpu"]
    train_entry.main([*common, "--end_epoch", "1", "--seed", "0", "--pretrained", "none",
                      "--train_batch_size", "2"])
    result = out / "result" / "kinetics_result.json"
    folder = test_entry.main([*common, "--test_epoch", "0"])
    from_folder = result.read_bytes()
    os.remove(result)
    shards = test_entry.main([*common, "--test_epoch", "0", "--shards",
                              str(packed / "sh_test"), "--num_thread", "2"])
    # pose_only: the video whose pose file is unreadable is left out, from both.
    assert result.read_bytes() == from_folder and len(json.loads(from_folder)) == 8
    for key in ("top1", "top5", "videos", "annotated", "left_out_at_start", "data_problems"):
        assert shards[key] == folder[key], key


def damage(src, dst, how):
    shutil.copytree(src, dst)
    path = dst / "shard-000001.tar"
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[:len(raw) // 2])
        return path, "truncated or changed shard"
    # A member renamed (same length, same size): the frame is missing from the shard.
    path.write_bytes(raw.replace(b"00000002.000005.jpg", b"00000002.000005.jpX", 1))
    return path, "member 00000002.000005.jpg is missing"


@pytest.mark.parametrize("how", ["truncated", "missing_member"])
def test_a_damaged_shard_is_one_line_naming_it(packed, tmp_path, capsys, how):
    path, what = damage(packed / "sh_train", tmp_path / "sh", how)
    with pytest.raises(SystemExit) as exc:
        train_entry.main(train_args(packed, tmp_path / "out", "--shards", str(tmp_path / "sh"),
                                    "--end_epoch", "1"))
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: ") and what in err


def test_two_gloo_processes_train_from_their_own_shards(packed, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "main/train.py", *train_args(packed, out, "--shards", "file://" + str(packed / "sh_train"),
                                      "--end_epoch", "1", "--seed", "0")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = open(out / "log" / "train_rgb_only.txt").read()
    # Rank 0: shards 0, 2, 4 (5 videos), rank 1: 4 videos; 5 clips each, 2 steps of 2.
    assert "rank 0 reads 3 of 5 shard(s)" in log and "backend gloo" in log
    assert "2 process(es) x batch 2, 2 iterations per epoch" in log
    snap = torch.load(out / "model_dump" / "snapshot_0.pth.tar", weights_only=True)
    assert snap["world_size"] == 2 and np.isfinite(
        [v.float().sum().item() for v in snap["network"].values()]).all()


def test_benchmark_case_packs_and_times_both_sides(tmp_path):
    from tool.benchmark import table
    from tool.benchmarks import shards as shards_case
    from tool.benchmarks.data import benchmark_data

    data_dir = benchmark_data(str(tmp_path), smoke=True)
    result = shards_case.run(device=torch.device("cpu"), repeats=1, smoke=True,
                             data_dir=data_dir, workers=0)
    packing = result["packing"]
    assert (packing["train"]["videos"], packing["train"]["frames"]) == (4, 48)
    assert (packing["test"]["videos"], packing["test"]["frames"]) == (2, 24)
    # A tar member costs a header and padding: the shards are larger than the frame files.
    assert packing["train"]["shard_mib"] > packing["train"]["frame_file_mib"] > 0
    assert [r["case"] for r in result["rows"]] == ["shards, test split (0 workers)",
                                                  "shards, train split (0 workers)"]
    assert all(r["ours_clips_per_s"] > 0 and r["baseline_clips_per_s"] > 0
               for r in result["rows"])
    assert "Packing the train split into shards: 4 videos, 48 frames" in table(
        {"shards": result})


def one_line_error(capsys, argv):
    """make_shards' exit status and its one stderr line."""
    with pytest.raises(SystemExit) as exc:
        make_shards.main(argv)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return exc.value.code, err


def test_a_set_of_video_files_is_refused_up_front(tmp_path, capsys):
    from tests.test_video_source import folders_to_videos
    info = write_kinetics(str(tmp_path), num_classes=2, videos_per_class=2, frame_num=8,
                          frame_size=(32, 48))
    videos = folders_to_videos([v["frame_dir"] for v in info["val"]])
    code, err = one_line_error(capsys, ["--split", "test", "--out", str(tmp_path / "sh"),
                                        "--data_dir", str(tmp_path), *CLIP])
    assert code == 1 and err.startswith(f"error: {sorted(videos.values())[0]}: ")
    assert "tool/video2image.py" in err and "--frames_from video without shards" in err
    assert not osp.exists(tmp_path / "sh")  # refused before anything is written


def test_a_video_without_any_frame_stops_the_packing(tmp_path, capsys):
    info = write_kinetics(str(tmp_path), num_classes=2, videos_per_class=2, frame_num=8,
                          frame_size=(32, 48))
    empty = info["val"][1]["frame_dir"]
    for name in os.listdir(empty):
        os.remove(osp.join(empty, name))
    code, err = one_line_error(capsys, ["--split", "test", "--out", str(tmp_path / "sh"),
                                        "--data_dir", str(tmp_path), *CLIP])
    assert code == 1 and err.startswith(f"error: {empty}: none of the video's 8 frames")
    assert not osp.exists(tmp_path / "sh" / "index.json")


def test_skeleton_is_refused_in_one_line(tmp_path, capsys):
    code, err = one_line_error(capsys, ["--split", "train", "--out", str(tmp_path / "sh"),
                                        "--dataset", "Skeleton", "--ann_file",
                                        str(tmp_path / "a.pkl")])
    assert code == 1 and err.startswith("error: --dataset Skeleton: make_shards packs ")
    assert "collide with make_shards' --split" in err


def test_another_subset_is_refused_naming_the_index(packed):
    with pytest.raises(UsageError) as exc:
        build_dataset(make_cfg(packed, subset="400", output_dir=str(packed / "out"),
                               shards=str(packed / "sh_test")), "Kinetics", "test")
    assert str(exc.value).startswith(f"{packed / 'sh_test'}/index.json: subset Tiny, this "
                                     "run's --subset 400; ")


def test_another_protocol_is_refused_and_an_older_index_is_read_as_xsub(tmp_path, caplog):
    write_ntu(str(tmp_path), num_classes=2, videos_per_class=2, frame_num=10)
    make_shards.main(["--split", "test", "--out", str(tmp_path / "sh"), "--dataset", "NTU",
                      "--data_dir", str(tmp_path), *CLIP])
    index_path = tmp_path / "sh" / "index.json"
    content = json.loads(index_path.read_text())
    assert content["protocol"] == "xsub"

    def shards(**extra):
        return build_dataset(make_cfg(tmp_path, dataset="NTU", shards=str(tmp_path / "sh"),
                                      **extra), "NTU", "test")
    with pytest.raises(UsageError) as exc:
        shards(protocol="xview")
    assert str(exc.value).startswith(f"{index_path}: protocol xsub, this run's --protocol "
                                     "xview; ")
    del content["protocol"]  # as written before the protocol was recorded
    index_path.write_text(json.dumps(content))
    with caplog.at_level(logging.INFO, logger="integral_action.data"):
        assert len(shards()) == 40
    assert f"{index_path} records no protocol (an older index): taken as xsub" in caplog.text
    with pytest.raises(UsageError, match="protocol xsub, this run's --protocol xview"):
        shards(protocol="xview")
