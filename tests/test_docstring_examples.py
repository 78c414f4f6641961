"""Every `>>>` example in the package's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import tensorflow as tf

import tfx_transfer


def _modules_with_examples():
    names = [tfx_transfer.__name__]
    names += [m.name for m in pkgutil.walk_packages(tfx_transfer.__path__, prefix="tfx_transfer.")]
    return sorted(n for n in names if ">>>" in (importlib.util.find_spec(n).loader.get_source(n) or ""))


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    globs = {"np": np, "tf": tf, **vars(module)}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name, globs=globs)
    assert tests, f"{module_name} has '>>>' but no example was found"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module_name} failed (output above)"
