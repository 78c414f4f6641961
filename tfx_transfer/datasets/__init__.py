"""Datasets the toolkit builds itself, offline, for recipes and benchmarks."""

from tfx_transfer.datasets.fortunes import make_fortunes
from tfx_transfer.datasets.keywords import make_keywords

__all__ = ["make_fortunes", "make_keywords"]
