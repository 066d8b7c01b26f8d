"""Test isolation. The entry points configure the 'integral_action' logger for their process
(handlers, no propagation); a test that ran one in-process must not change what the next test's
`caplog` sees."""
import logging
import os
import os.path as osp

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
