"""Runs that cannot lie or lose work: unusable output folders, a second run on the same folder,
failed saves, diverged weights, epochs without data, and Ctrl-C / SIGTERM.

The training runs go through `main/train.py`'s `main(argv)` in this process on a tiny
Kinetics-format data set; the signal tests start it as a subprocess with DataLoader workers.
"""
import errno
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import pytest
import torch

from common.errors import Interrupted, OutputError, exit_on_error, quiet_loader_worker
from common.io import run_lock as run_lock_module
from common.io.run_lock import ensure_writable_folder, run_lock
from common.train import checkpoint, epoch as epoch_module
from common.train.engine import NonFiniteError, check_finite_weights
from main import train as train_entry
# The tiny data set (9 clips, 4 iterations of 2 per epoch) and command line of the resume tests.
from tests.test_training_state import args, data_root  # noqa: F401 (a fixture)
from tool.recipe.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(ROOT, "main", "train.py")


def train_fails(argv, capsys):
    """Run train.py's main, expect it to stop with exit status 1; returns its stderr lines."""
    with pytest.raises(SystemExit) as stop:
        train_entry.main(argv)
    assert stop.value.code == 1
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- signals at the entry points ------------------------------------------------------------

def test_an_interrupted_entry_point_prints_one_line_and_exits_128_plus_signal(capsys):
    @exit_on_error
    def ctrl_c():
        raise KeyboardInterrupt

    @exit_on_error
    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises at once
        time.sleep(5)

    before = signal.getsignal(signal.SIGTERM)
    for main, status, line in ((ctrl_c, 130, "interrupted (SIGINT)"),
                               (terminated, 143, "interrupted (SIGTERM)")):
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == status
        assert capsys.readouterr().err == line + "\n"
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_a_nested_entry_point_leaves_the_one_line_to_the_outer_one(capsys):
    @exit_on_error
    def inner():
        raise Interrupted(signal.SIGTERM, where="at epoch 2, iteration 3",
                          hint="resume with --continue")

    @exit_on_error
    def outer():
        try:
            inner()
        except Interrupted as stop:
            assert stop.signum == signal.SIGTERM and capsys.readouterr().err == ""
            raise Interrupted(stop.signum, where=f"during rgb_only training {stop.where}",
                              hint="run it again") from None

    with pytest.raises(SystemExit) as stop:
        outer()
    assert stop.value.code == 143
    assert capsys.readouterr().err == (
        "interrupted during rgb_only training at epoch 2, iteration 3; run it again\n")


# --- output folders -------------------------------------------------------------------------

def test_a_file_in_place_of_the_output_folder_stops_before_any_work(data_root, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model_dump").write_text("not a folder")
    lines = train_fails(args(data_root, out, "--end_epoch", "1"), capsys)
    assert lines == [f"error: {out / 'model_dump'} cannot be an output folder: a file is in its "
                     "place (or in the place of a folder above it); move the file, or pick "
                     "another --output_dir"]
    assert not (out / "log").exists()  # nothing started


def test_a_read_only_output_folder_stops_before_any_work(data_root, tmp_path, capsys,
                                                         monkeypatch):
    out = tmp_path / "out"
    read_only = str(out / "model_dump")
    real_access = os.access
    # Root may write anywhere: a chmod would not stop it, so the check itself is made to see a
    # read-only folder.
    monkeypatch.setattr(run_lock_module.os, "access",
                        lambda p, mode: False if str(p) == read_only else real_access(p, mode))
    lines = train_fails(args(data_root, out, "--end_epoch", "1"), capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: the output folder {read_only} is "
                                                   "not writable (permission denied)")
    assert not (out / "log" / "train_rgb_only.txt").exists()


def test_a_second_run_on_the_same_folder_names_the_holder(data_root, tmp_path, capsys):
    out = tmp_path / "out"
    lock_path = out / ".model_dump.train.lock"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom common.io.run_lock import run_lock\n"
         "with run_lock(sys.argv[1], subject='x'):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n", str(lock_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lines = train_fails(args(data_root, out, "--end_epoch", "1"), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {out / 'model_dump'} is in use by another training run "
                               f"(host {socket.gethostname()}, pid {holder.pid}, started ")
    assert "wait for it to end, or write this run elsewhere with --output_dir DIR" in lines[0]
    assert not list((out / "model_dump").iterdir())
    # The holder is dead (SIGKILL): its lock file, still there, does not block.
    assert lock_path.exists()
    with run_lock(str(lock_path), subject="x") as path:
        assert f"pid {os.getpid()}," in open(path).read()


def test_test_py_checks_its_output_folders(tmp_path, capsys):
    from main import test as test_entry
    (tmp_path / "result").write_text("a file")
    with pytest.raises(SystemExit) as stop:
        test_entry.main(["--mode", "rgb_only", "--output_dir", str(tmp_path), "--test_epoch",
                         "0", "--data_dir", str(tmp_path)])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'result'} cannot be an output folder")


def test_ensure_writable_folder_creates_missing_parents(tmp_path):
    ensure_writable_folder(str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="a file is in its place"):
        ensure_writable_folder(str(tmp_path / "f" / "sub"))


# --- failed saves ---------------------------------------------------------------------------

def test_a_full_disk_during_a_save_keeps_the_previous_snapshot(data_root, tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "out"
    real_save, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"the first bytes")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    lines = train_fails(args(data_root, out, "--end_epoch", "3"), capsys)
    dump = out / "model_dump"
    assert lines == [f"error: cannot write {dump / 'snapshot_1.pth.tar'}: the disk is full "
                     f"({run_lock_module.describe_free_space(str(dump))}); the files written "
                     "before are intact: make room, or write elsewhere with --output_dir DIR, "
                     "and run again (training: with --continue)"]
    assert " GiB free on " in lines[0]
    assert sorted(os.listdir(dump)) == ["snapshot_0.pth.tar"]  # no temporary left either
    assert torch.load(dump / "snapshot_0.pth.tar", weights_only=True)["epoch"] == 0


def test_a_real_file_size_limit_is_one_line(tmp_path):
    script = ("import resource, signal, torch\n"
              "from common.errors import exit_on_error\n"
              "from common.train.checkpoint import atomic_save\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))\n"
              "exit_on_error(atomic_save)({'w': torch.zeros(100000)}, 'big.pth.tar')\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: cannot write big.pth.tar: the file size limit is "
                                  f"reached (")
    assert os.listdir(tmp_path) == []


def test_a_save_bug_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(TypeError("bug")))
    with pytest.raises(TypeError):
        checkpoint.atomic_save({}, str(tmp_path / "x.pth.tar"))


# --- non-finite weights, epochs without data ------------------------------------------------

def test_check_finite_weights_names_the_first_bad_tensor():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    check_finite_weights(net, "after epoch 0")
    with torch.no_grad():
        net[1].running_var[1] = float("inf")
    with pytest.raises(NonFiniteError, match=r"non-finite weights in 1\.running_var after "
                                             r"epoch 4, iteration 7: the snapshot is not "
                                             r"written"):
        check_finite_weights(net, "after epoch 4, iteration 7")


def test_weights_diverged_by_the_last_step_are_never_saved(data_root, tmp_path, capsys,
                                                           monkeypatch):
    out = tmp_path / "out"
    real_step, steps = epoch_module.optimizer_step, []

    def step(loss, optimizer, scaler=None):
        real_step(loss, optimizer, scaler)
        steps.append(1)
        if len(steps) == 4:  # the epoch's last step overflowed, after a finite loss
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].view(-1)[0] = float("nan")

    monkeypatch.setattr(epoch_module, "optimizer_step", step)
    lines = train_fails(args(data_root, out, "--end_epoch", "1"), capsys)
    assert len(lines) == 1
    assert lines[0].startswith("error: non-finite weights in img_backbone.conv1.weight after "
                               "epoch 0, iteration 4: the snapshot is not written (the previous "
                               "ones are intact); lower --lr")
    assert len(steps) == 4 and os.listdir(out / "model_dump") == []


def test_an_epoch_without_a_usable_clip_is_an_error(data_root, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(data_root, data)
    for path in data.rglob("*.jpg"):  # every frame damaged: each clip skipped and counted
        path.write_bytes(b"not a JPEG")
    out = tmp_path / "out"
    lines = train_fails(args(data, out, "--end_epoch", "1"), capsys)
    assert len(lines) == 1 and lines[0].startswith("error: epoch 0 had no usable training clip")
    assert "nothing to save" in lines[0] and "corrupt_frame" in lines[0]
    assert os.listdir(out / "model_dump") == []


# --- Ctrl-C and SIGTERM with DataLoader workers ---------------------------------------------

def _default_sigint():
    """In the child: SIGINT as a terminal has it. A suite started in the background by a shell
    (`pytest &`) inherits SIGINT ignored, and a run rightly keeps an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_training(data_root, out, signum):
    """Start train.py with 2 workers and a mid-epoch snapshot every iteration; send `signum` to
    its process group (as a terminal's Ctrl-C does) once the log shows the first mid-epoch
    snapshot saved. Returns the finished process and its stderr."""
    log = out / "log" / "train_rgb_only.txt"
    proc = subprocess.Popen(
        [sys.executable, TRAIN, *args(data_root, out, "--end_epoch", "50", "--save_every", "1",
                                      "--log_interval", "1", workers=2)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_default_sigint)
    try:
        deadline = time.time() + 120
        while not (log.exists() and "snapshot saved: " in log.read_text()):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, "training never saved a snapshot"
            time.sleep(0.05)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_training_in_one_line_and_continue_resumes(data_root, tmp_path, signum):
    out = tmp_path / "out"
    proc, err = interrupt_training(data_root, out, signum)
    assert proc.returncode == 128 + signum, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix, _, hint = lines[0].partition("; ")
    assert hint == "resume with --continue"
    epoch, iteration = (int(x) for x in prefix.replace("interrupted at epoch ", "")
                        .split(", iteration "))
    assert epoch >= 0 and 0 <= iteration <= 4
    dump = out / "model_dump"
    assert not [n for n in os.listdir(dump) if n.startswith(".tmp_")]
    if signum == signal.SIGTERM:
        return  # the resume is the same after either signal
    resumed = subprocess.run([sys.executable, TRAIN, *args(data_root, out, "--continue",
                                                           "--end_epoch", str(epoch + 1))],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (dump / f"snapshot_{epoch}.pth.tar").exists()


def _share_a_handle_then_wait(quiet, queue):
    """A loader worker's part (run in a forked process): offer a file descriptor through
    multiprocessing's resource sharer, as a worker does for each batch, then wait."""
    from multiprocessing import resource_sharer
    if quiet:
        quiet_loader_worker()
    queue.put(resource_sharer.DupFd(os.open(os.devnull, os.O_RDONLY))._id)
    time.sleep(1.0)


@pytest.mark.parametrize("quiet", [False, True])
def test_a_batch_dropped_half_way_leaves_the_worker_silent(capfd, quiet):
    # The main process connects to the worker for a batch's descriptor and is interrupted
    # before it asks: the worker's sharing thread finds the connection closed (EOFError).
    import multiprocessing
    from multiprocessing.connection import Client
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_share_a_handle_then_wait, args=(quiet, queue))
    worker.start()
    address, _key = queue.get(timeout=30)
    Client(address, authkey=multiprocessing.current_process().authkey).close()
    worker.join(timeout=30)
    assert worker.exitcode == 0
    err = capfd.readouterr().err
    if quiet:
        assert err == ""
    else:  # what a worker printed before: the test sees the failure it guards against
        assert "Traceback" in err and "EOFError" in err, err


def test_the_quiet_worker_still_prints_its_own_errors(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: seen.append(exc[0]))
    before = signal.getsignal(signal.SIGTERM)
    try:
        quiet_loader_worker()
    finally:
        signal.signal(signal.SIGTERM, before)

    def report(error):
        try:
            raise error
        except BaseException:
            sys.excepthook(*sys.exc_info())

    for error in (EOFError(), BrokenPipeError(), ValueError("a bug")):
        thread = threading.Thread(target=report, args=(error,))
        thread.start()
        thread.join()
    report(ConnectionResetError())  # on the main thread: not the sharing thread's
    assert seen == [ValueError, ConnectionResetError]


# --- tool/train_all.py's steps --------------------------------------------------------------

def test_train_all_says_which_step_was_interrupted(capsys):
    @exit_on_error
    def stage_main(argv):
        raise Interrupted(signal.SIGTERM, where="at epoch 1, iteration 3",
                          hint="resume with --continue")

    stage = types.SimpleNamespace(main=stage_main)

    @exit_on_error
    def driver():
        Runner().run("rgb_only training", TRAIN, lambda: stage, [])

    with pytest.raises(SystemExit) as stop:
        driver()
    assert stop.value.code == 143
    assert capsys.readouterr().err == (
        "interrupted during rgb_only training at epoch 1, iteration 3; run the same train_all "
        "command again to resume\n")


def test_a_stopped_driver_stops_its_child_and_waits(tmp_path, capsys):
    flag = tmp_path / "child_pid"
    child = ("import os, sys, time\nfrom common.errors import exit_on_error\n"
             "def main():\n    open(sys.argv[1], 'w').write(str(os.getpid()))\n"
             "    time.sleep(60)\nexit_on_error(main)()\n")

    def stop_driver_once_the_child_runs():
        deadline = time.time() + 60
        while not (flag.exists() and flag.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # the driver only, as `kill <pid>` does

    @exit_on_error
    def driver():
        threading.Thread(target=stop_driver_once_the_child_runs, daemon=True).start()
        Runner(nproc_per_node=2)._run_child("pose_only training", "cmd",
                                            [sys.executable, "-c", child, str(flag)])

    with pytest.raises(SystemExit) as stop:
        driver()
    assert stop.value.code == 143
    assert capsys.readouterr().err == "interrupted (SIGTERM)\n"  # (the child prints to fd 2)
    with pytest.raises(ProcessLookupError):  # the child got the signal, ended, was waited for
        os.kill(int(flag.read_text()), 0)
