"""A finished run directory written by hand, with the shapes `tfx-transfer train` writes, for report tests."""

import io
import json
import pathlib
import wave

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CLASSES = ["cat", "dog", "<b>bird</b>"]


def png_bytes(color=(200, 30, 30), size=(8, 8)) -> bytes:
    figure = Figure(figsize=(size[0] / 10, size[1] / 10), dpi=10)
    figure.patch.set_facecolor(np.asarray(color) / 255)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def wav_bytes(seconds=0.1, rate=16000) -> bytes:
    samples = (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds))) * 20000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


def write_run_dir(root, name="pets", accuracy=0.8, extra_plot=True, phase1_test=True) -> pathlib.Path:
    """A two-phase run whose second phase stopped early at epoch 4 of 10 and kept epoch 2."""
    root = pathlib.Path(root)
    (root / "examples").mkdir(parents=True, exist_ok=True)
    metrics = {
        "recipe": name,
        "backbone": "tiny",
        "class_names": CLASSES,
        "split_manifest": str(root / "splits.csv"),
        "data": {
            "source": "folder",
            "path": "/data/pets",
            "counts": {split: {c: n for c in CLASSES} for split, n in (("train", 20), ("validation", 5), ("test", 5))},
            "skipped": [{"source": "/data/pets/cat/<broken>.jpg", "reason": "cannot be decoded as an image"}],
        },
        "phases": [
            {"name": "head", "epochs_run": 3, "seconds": 6.0,
             "history": {"loss": [1.2, 0.9, 0.7], "accuracy": [0.4, 0.6, 0.7],
                         "val_loss": [1.0, 0.8, 0.75], "val_accuracy": [0.5, 0.6, 0.7]}},
            {"name": "fine_tune", "epochs_run": 4, "seconds": 20.0,
             "history": {"loss": [0.6, 0.5, 0.4, 0.3], "accuracy": [0.75, 0.8, 0.85, 0.9],
                         "val_loss": [0.7, 0.65, 0.7, 0.72], "val_accuracy": [0.72, 0.8, 0.78, 0.77]}},
        ],
        "test": {
            "accuracy": accuracy, "loss": 0.6, "examples": 15,
            "per_class": {c: {"precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 5} for c in CLASSES},
            "confusion_matrix": [[4, 1, 0], [0, 5, 0], [2, 0, 3]],
        },
        "export_dir": "/exports/pets/1",
        "seconds": 40.0,
        "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1"},
    }
    if phase1_test:
        metrics["phases"][0]["test"] = {"accuracy": 0.7, "loss": 0.8, "examples": 15}
    (root / "metrics.json").write_text(json.dumps(metrics))
    (root / "recipe.yaml").write_text(
        f"name: {name}\nphases:\n- name: head\n  epochs: 3\n  early_stopping_patience: null\n"
        "- name: fine_tune\n  epochs: 10\n  early_stopping_patience: 2\n"
    )
    (root / "examples" / "error_00.png").write_bytes(png_bytes())
    (root / "examples" / "error_01.wav").write_bytes(wav_bytes())
    index = {
        "modality": "image", "kind": "multiclass", "examples_total": 15, "errors": 3, "note": "",
        "examples": [
            {"index": 10, "true": ["<b>bird</b>"], "predicted": ["cat"], "confidence": 0.9, "true_probability": 0.05,
             "file": "examples/error_00.png"},
            {"index": 11, "true": ["<b>bird</b>"], "predicted": ["cat"], "confidence": 0.8, "true_probability": 0.1,
             "file": "examples/error_01.wav"},
            {"index": 0, "true": ["cat"], "predicted": ["dog"], "confidence": 0.6, "true_probability": 0.3,
             "text": "a <script>alert(1)</script> snippet"},
        ],
    }
    (root / "examples" / "worst_errors.json").write_text(json.dumps(index))
    if extra_plot:
        (root / "lr_find.png").write_bytes(png_bytes((30, 30, 200)))
    return root
