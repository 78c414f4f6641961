"""Shared fixtures: quiet TF logs, a fresh dtype policy per test, a tiny backbone. Helpers live in `harness`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Fuzz tests draw the same cases on every run by default, so a test run's verdict is reproducible;
# HYPOTHESIS_PROFILE=explore draws new random cases (run it to hunt for bugs, and pin what it finds
# with @example).
settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))

from harness import tiny_resnet, write_image_folder  # noqa: E402,F401  (older tests import them from here)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def tiny_backbone():
    return tiny_resnet()
