"""LiteRT export of a recipe's run: inside `train`, or later from a finished run directory.

Example:

```python
metrics = export_run_dir("runs/flowers")   # writes <export_dir>/litert/ and updates metrics.json
print(metrics["models"]["none"]["test"]["accuracy"])
```
"""

import keras

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.litert.export import export_litert
from tfx_transfer.log import logger


def export_recipe_litert(recipe, model, backbone, splits, export_dir: str, keras_file: str | None) -> dict:
    """`export_litert` with the recipe's settings; a text backbone's vocabulary goes along."""
    tokenizer = getattr(backbone.preprocessor, "tokenizer", None) if recipe.modality == "text" else None
    vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else None
    return export_litert(
        model, splits, recipe.head, export_dir, recipe.export.litert, keras_file=keras_file, vocabulary=vocabulary
    )


def export_run_dir(run_dir: str, overrides: list[str] = ()) -> dict:
    """Writes the LiteRT models of a finished run into its export and records them in its `metrics.json`.

    The run directory must hold `recipe.yaml`, `metrics.json` (with
    `export_dir`) and `model.keras`. The data are re-read with the recipe's
    seed, so the test split is the one the run was measured on. `overrides`
    (`export.litert.quantization=[int8]`, ...) change the LiteRT settings.
    """
    from tfx_transfer import data as data_lib
    from tfx_transfer.backbones.registry import resolve
    from tfx_transfer.recipe import load_recipe

    paths = {name: storage.join(run_dir, name) for name in ("recipe.yaml", "metrics.json", "model.keras")}
    missing = [name for name, path in paths.items() if not storage.exists(path)]
    if missing:
        raise FileNotFoundError(
            f"Run directory {run_dir!r} has no {', '.join(missing)}: pass the run_dir of a finished "
            "`tfx-transfer train` run."
        )
    bad = [o for o in overrides if not o.startswith("export.litert.")]
    if bad:
        raise ConfigError(f"export --set changes only export.litert.* settings, received {bad}.")
    recipe = load_recipe(paths["recipe.yaml"], list(overrides))
    metrics = storage.read_json(paths["metrics.json"])
    export_dir = metrics.get("export_dir")
    if not export_dir or not storage.exists(storage.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(
            f"{paths['metrics.json']!r} names export_dir {export_dir!r}, which holds no SavedModel. The LiteRT "
            "models go into the run's export version: train with export.enabled: true."
        )
    backbone = resolve(recipe.backbone)
    splits = data_lib.load_data(recipe, backbone)
    if list(splits.class_names) != list(metrics.get("class_names", [])):
        raise ValueError(
            f"The data of {paths['recipe.yaml']!r} now has classes {splits.class_names}, the run was trained "
            f"on {metrics.get('class_names')}: the test split cannot be reproduced."
        )
    model = keras.saving.load_model(paths["model.keras"])
    logger.info("Converting %s to LiteRT (%s)", paths["model.keras"], ", ".join(recipe.export.litert.quantization))
    litert = export_recipe_litert(recipe, model, backbone, splits, export_dir, paths["model.keras"])
    metrics["litert"] = litert
    storage.write_json_atomic(paths["metrics.json"], metrics)
    return litert
