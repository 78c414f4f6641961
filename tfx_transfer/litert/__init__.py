"""LiteRT (`.tflite`) export: conversion with quantization, the interpreter, and measured metrics.

>>> from tfx_transfer.litert import QUANTIZATIONS
>>> QUANTIZATIONS
('none', 'float16', 'dynamic_range', 'int8')
"""

from tfx_transfer.litert.convert import QUANTIZATIONS, Conversion, convert_to_litert, litert_input_specs
from tfx_transfer.litert.export import LITERT_DIR, export_litert, litert_filename
from tfx_transfer.litert.interpreter import LiteRTRunner, as_input_dtype

__all__ = [
    "LITERT_DIR",
    "QUANTIZATIONS",
    "Conversion",
    "LiteRTRunner",
    "as_input_dtype",
    "convert_to_litert",
    "export_litert",
    "litert_filename",
    "litert_input_specs",
]
