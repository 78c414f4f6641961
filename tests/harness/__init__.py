"""Helpers shared by the tests, in the spirit of KerasHub's `TestCase`: tiny models, data, contract checks.

`from harness import tiny_resnet` replaces the old `from conftest import ...`.
"""

from harness.export_contract import check_export_contract
from harness.image import tiny_resnet, write_image_folder

__all__ = ["check_export_contract", "tiny_resnet", "write_image_folder"]
