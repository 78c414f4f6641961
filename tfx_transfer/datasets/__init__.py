"""Datasets the toolkit builds itself, offline, for recipes and benchmarks."""

from tfx_transfer.datasets.fortunes import make_fortunes
from tfx_transfer.datasets.keywords import make_keywords
from tfx_transfer.datasets.sentiment import make_sentiment

__all__ = ["make_fortunes", "make_keywords", "make_sentiment"]
