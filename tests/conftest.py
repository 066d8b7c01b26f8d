"""Test isolation: the entry points configure the 'integral_action' logger for their process
(handlers, no propagation); a test that ran one in-process must not change what the next test's
`caplog` sees."""
import logging

import pytest


@pytest.fixture(autouse=True)
def fresh_project_logger():
    yield
    root = logging.getLogger("integral_action")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True
    root.setLevel(logging.NOTSET)
