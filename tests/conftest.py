"""Test isolation. The entry points configure the 'integral_action' logger for their process
(handlers, no propagation); a test that ran one in-process must not change what the next test's
`caplog` sees."""
import logging
import os
import os.path as osp
import shutil

import pytest

# Scripts the tests start as subprocesses import this checkout, even where another checkout of
# the project is the one installed (editable) in the environment.
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(autouse=True)
def fresh_project_logger():
    yield
    root = logging.getLogger("integral_action")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True
    root.setLevel(logging.NOTSET)


@pytest.fixture(autouse=True, scope="module")
def module_folders_go_when_the_module_passed(request, tmp_path_factory):
    """The temporary folders a test module made (its module-scoped data sets and runs) are
    removed when the module ends without a failure; a failed module's stay, to be looked at.
    Kept to the end of the run, the training modules' snapshots took gigabytes, more than some
    machines have free (pytest.ini removes a passing test's own folder as it ends). A fixture
    shared beyond its module would need a scope of its own: there is none."""
    base = tmp_path_factory.getbasetemp()
    before = set(os.listdir(base))
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        for name in sorted(set(os.listdir(base)) - before):
            shutil.rmtree(osp.join(base, name), ignore_errors=True)
