"""tool/compare_quickstart.py: the quickstart of a baseline commit against this checkout.

The real comparison against 198198d runs both quickstarts in their --fast mode (about a minute
and a half on 2 CPU cores, nearly all of it the two quickstarts); its times mean nothing, so
only the report's consistency is checked. The history must hold 198198d: a clone has it, a
shallow clone does not, and then the test fails and says so.
"""
import json
import os
import os.path as osp
import subprocess
import tempfile

import pytest

from common.errors import UsageError
from tool import compare_quickstart, quickstart
from tool.benchmarks import quickstart_compare
from tool.benchmarks.quickstart_compare import QuickstartFailed, compare_tables, run

ROOT = quickstart_compare.ROOT
BASELINE = "198198d"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


def require_commit(rev: str) -> None:
    """Fail (never skip) when the history lacks `rev`: the comparison could not run at all."""
    if _git("cat-file", "-e", f"{rev}^{{commit}}").returncode != 0:
        pytest.fail(f"commit {rev} is not in the history of {ROOT}; the quickstart comparison "
                    f"needs a full clone (`git fetch --unshallow`)")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test alone, to see that the exported tree is removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_fast_comparison_against_198198d(tmp_path, private_tmp, capsys):
    require_commit(BASELINE)
    out = tmp_path / "out"
    report = run(baseline_rev=BASELINE, seeds=1, first_seed=0, workers=0, output_dir=str(out),
                 fast=True)
    printed = capsys.readouterr().out
    base, ours = report["baseline"], report["ours"]
    assert base["seconds"] > 0 and ours["seconds"] > 0
    assert report["speedup"] == pytest.approx(base["seconds"] / ours["seconds"])
    assert base["commit"].startswith(BASELINE) and len(base["commit"]) == 40
    # The baseline ran in its own exported tree, and that tree is gone.
    assert base["command"][1] == osp.join("tool", "quickstart.py") and "--fast" in base["command"]
    assert os.listdir(private_tmp) == []

    saved = json.load(open(osp.join(out, "result", "quickstart_compare.json")))
    recipes = [r.name for r in quickstart.RECIPES]
    assert list(saved["baseline"]["summary"]) == recipes
    assert list(saved["ours"]["summary"]) == recipes
    assert saved["speedup"] == pytest.approx(saved["baseline"]["seconds"]
                                             / saved["ours"]["seconds"])
    assert saved["comparison"]["same_rows"] is True
    for cell in saved["comparison"]["cells"]:
        # One seed: differences only, no noise figures.
        assert cell["difference"] == pytest.approx(cell["ours_mean"] - cell["baseline_mean"])
        assert cell["ours_std"] is None and cell["within_noise"] is None
    assert saved["targets"] == {"speedup >= 1.7": saved["speedup"] >= 1.7,
                                "tables within seed noise": None}
    assert saved["command"].startswith("python tool/compare_quickstart.py --baseline_rev 198198d")
    # Each side's console output is in its log, not on ours.
    for side in ("baseline", "ours"):
        log = open(osp.join(out, "quickstart_compare", f"{side}.log")).read()
        assert "| rgb+pose (robust) |" in log
    assert "| rgb+pose (robust) |" not in printed.split("Speed-up")[0]
    assert "noise cannot be estimated from one seed" in printed and "| rgb_only |" in printed


def test_an_unknown_revision_is_a_one_line_error_naming_it(tmp_path, private_tmp, capsys):
    with pytest.raises(UsageError, match="deadbeef"):
        run(baseline_rev="deadbeef", seeds=1, first_seed=0, workers=0,
            output_dir=str(tmp_path), fast=True)
    with pytest.raises(SystemExit) as exit_info:
        compare_quickstart.main(["--baseline_rev", "deadbeef", "--output_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.startswith("error: --baseline_rev deadbeef") and err.count("\n") == 1
    assert not osp.exists(osp.join(tmp_path, "quickstart_compare", "baseline.log"))


def test_a_failing_side_names_itself_and_its_log(tmp_path, private_tmp):
    # The first commit of the history has no tool/quickstart.py: its side fails at once.
    root_commit = _git("rev-list", "--max-parents=0", "HEAD").stdout.split()[-1]
    assert _git("cat-file", "-e", f"{root_commit}:tool/quickstart.py").returncode != 0
    with pytest.raises(QuickstartFailed) as failure:
        run(baseline_rev=root_commit, seeds=1, first_seed=0, workers=0,
            output_dir=str(tmp_path), fast=True)
    log = osp.join(str(tmp_path), "quickstart_compare", "baseline.log")
    message = str(failure.value)
    assert message.startswith(f"the baseline ({root_commit}) quickstart failed")
    assert log in message and "\n" not in message
    assert os.listdir(private_tmp) == []
    # It stopped there: the other side never ran.
    assert not osp.exists(osp.join(str(tmp_path), "quickstart_compare", "ours.log"))


def test_seed_noise_rule():
    # [mean, population std] as the quickstart stores them; 3 seeds -> sample std * sqrt(3/2).
    base = {"a": {"in context": {"top1": [50.0, 2.0], "top5": [100.0, 0.0]}},
            "b": {"in context": {"top1": [10.0, 0.0]}}}
    ours = {"a": {"in context": {"top1": [53.0, 2.0], "top5": [99.0, 0.0]}}}
    result = compare_tables(base, ours, 3)
    cells = {(c["recipe"], c["metric"]): c for c in result["cells"]}
    top1 = cells[("a", "top1")]
    assert top1["ours_std"] == pytest.approx(2.0 * (3 / 2) ** 0.5)
    # 2 * sqrt(6/3 + 6/3) = 4 >= |53 - 50|.
    assert top1["noise_bound"] == pytest.approx(4.0) and top1["within_noise"] is True
    # No spread on either side: any difference is outside noise.
    assert cells[("a", "top5")]["within_noise"] is False
    # A row only one side has: not the same table.
    only_base = cells[("b", "top1")]
    assert only_base["ours_mean"] is None and only_base["within_noise"] is False
    assert result["same_rows"] is False and result["within_noise"] is False
    assert result["cells_outside_noise"] == 2

    single = compare_tables(base, base, 1)
    assert single["within_noise"] is None and single["cells_outside_noise"] is None
    assert all(c["difference"] == 0 and c["noise_bound"] is None for c in single["cells"])


def test_each_side_imports_its_own_tree(tmp_path, monkeypatch):
    # A tree whose tool/quickstart.py reports where `common` came from: with PYTHONPATH (or an
    # editable install) pointing at this checkout, it must still be the tree's own.
    tree = tmp_path / "tree"
    (tree / "tool").mkdir(parents=True)
    (tree / "common").mkdir()
    (tree / "common" / "__init__.py").write_text("")
    (tree / "tool" / "quickstart.py").write_text(
        "import json, os, sys\n"
        "import common\n"
        "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "os.makedirs(os.path.join(out, 'result'))\n"
        "json.dump({'summary': {'common': common.__file__}},\n"
        "          open(os.path.join(out, 'result', 'quickstart.json'), 'w'))\n")
    monkeypatch.setenv("PYTHONPATH", ROOT)
    side = quickstart_compare.run_side(side="baseline", label="the baseline", tree=str(tree),
                                       quickstart_args=[], seeds=1,
                                       compare_dir=str(tmp_path / "compare"))
    assert side["summary"]["common"] == str(tree / "common" / "__init__.py")
