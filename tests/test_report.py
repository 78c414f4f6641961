"""The run report and the comparison page built from run directories, and the test examples the pipeline saves."""

import base64
import doctest
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from report_helpers import write_run_dir
from tfx_transfer.cli import main
from tfx_transfer.report import compare, examples, html, plots, run, run_report, write_comparison, write_report
from tfx_transfer.report.examples import save_test_examples
from tfx_transfer.report.run import load_run, phase_curves


@pytest.mark.parametrize("module", [html, run, plots, run_report, compare, examples])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.failed == 0


def test_report_is_self_contained_and_escapes_data(tmp_path):
    run_dir = write_run_dir(tmp_path / "run")
    (run_dir / "peers #1.png").write_bytes((run_dir / "lr_find.png").read_bytes())
    path = write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    assert path == str(run_dir / "report.html")
    for name in ("curves.png", "confusion_counts.png", "confusion_normalised.png"):
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG")
    # nothing loaded from elsewhere: every src is a data URI
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:") for s in sources)
    assert "<link rel=\"stylesheet\"" not in page and "<script" not in page
    assert 'id="curves"' in page and 'id="confusion-counts"' in page and 'id="confusion-normalised"' in page
    # data is escaped: class names, file names, texts
    assert "&lt;b&gt;bird&lt;/b&gt;" in page and "<b>bird</b>" not in page
    assert "&lt;broken&gt;.jpg" in page and "cannot be decoded as an image" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the worst errors embed their inputs: an image thumbnail and an audio player
    assert 'class="thumb"' in page and 'src="data:audio/wav;base64,' in page
    wav = base64.b64decode(page.split('src="data:audio/wav;base64,')[1].split('"')[0])
    assert wav == (run_dir / "examples" / "error_01.wav").read_bytes()
    # the extra plots of other features are linked (URL-quoted) and embedded
    assert '<a href="lr_find.png">lr_find.png</a>' in page
    assert '<a href="peers%20%231.png">peers #1.png</a>' in page
    assert '<a href="splits.csv">splits.csv</a>' in page  # the split manifest, next to the report
    # phase table: early stopping in phase 2 at epoch 4, kept epoch 2 (lowest val_loss)
    assert "early stopping at epoch 4" in page and "ran all epochs" in page
    # phase-1 against final test metrics
    assert "after phase &#x27;head&#x27;" in page and 'id="test-by-stage"' in page
    assert "3.15.1" in page and "name: pets" in page


def test_report_shows_most_confused_pairs_largest_first(tmp_path):
    run_dir = write_run_dir(tmp_path / "run")
    write_report(run_dir)
    section = (run_dir / "report.html").read_text().split('id="confused-pairs"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td class=\"num\">(\d+)</td>", section)
    assert rows == [("&lt;b&gt;bird&lt;/b&gt;", "cat", "2"), ("cat", "dog", "1")]


def test_report_without_optional_parts_says_what_is_missing(tmp_path):
    run_dir = write_run_dir(tmp_path / "run", extra_plot=False, phase1_test=False)
    (run_dir / "examples" / "worst_errors.json").unlink()
    write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    assert "examples/worst_errors.json is missing" in page
    assert 'id="test-by-stage"' not in page and 'id="other-plots"' not in page


def test_kept_epoch_recorded_by_the_phase_wins_and_without_early_stopping_the_last_epoch_is_kept():
    history = {"loss": [3.0, 2.0, 1.0], "val_loss": [1.0, 2.0, 3.0]}
    recorded, unstopped = phase_curves(
        [{"name": "a", "epochs_run": 3, "history": history, "best_epoch": {"kept_epoch": 3, "stopped_early": False}},
         {"name": "b", "epochs_run": 3, "history": history}],
        [{"name": "a", "epochs": 3, "early_stopping_patience": 1}, {"name": "b", "epochs": 3}],
    )
    assert (recorded.kept_epoch, recorded.stopped_early, recorded.first_epoch) == (3, False, 1)
    assert (unstopped.kept_epoch, unstopped.stopped_early, unstopped.first_epoch) == (3, False, 4)


def test_epochs_a_phase_planned_for_min_steps_replace_the_recipe_epochs():
    history = {"loss": [3.0, 2.0, 1.0, 0.5, 0.4]}
    (curve,) = phase_curves(
        [{"name": "tune", "epochs_run": 5, "epochs_planned": 5, "history": history}],
        [{"name": "tune", "epochs": 2, "min_steps": 120}],
    )
    assert (curve.epochs_planned, curve.stopped_early) == (5, False)


def test_missing_run_dir_error_names_the_file_and_the_cli_exits_2(tmp_path, capsys):
    with pytest.raises(ValueError, match="metrics.json"):
        load_run(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a finished run directory" in capsys.readouterr().err


def test_examples_outside_the_run_dir_and_oversized_files_are_refused(tmp_path, monkeypatch):
    run_dir = write_run_dir(tmp_path / "run")
    index = json.loads((run_dir / "examples" / "worst_errors.json").read_text())
    index["examples"][0]["file"] = "../secret.png"
    (run_dir / "examples" / "worst_errors.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="must be relative to the run dir"):
        write_report(run_dir)
    monkeypatch.setattr(run, "MAX_JSON_BYTES", 100)
    with pytest.raises(ValueError, match="more than the 100 bytes"):
        load_run(run_dir)


def test_cli_report_and_compare(tmp_path, capsys):
    first = write_run_dir(tmp_path / "a", accuracy=0.8)
    second = write_run_dir(tmp_path / "b", accuracy=0.9)
    assert main(["report", str(first)]) == 0
    assert f"report: {first / 'report.html'}" in capsys.readouterr().out
    output = tmp_path / "cmp.html"
    assert main(["compare", str(first), str(second), "--output", str(output)]) == 0
    page = output.read_text()
    # same recipe name twice: the labels tell the runs apart by their directory
    assert f"pets ({first})" in page and f"pets ({second})" in page
    assert '<td class="num">0.8000</td>' in page and '<td class="num">0.9000</td>' in page
    assert 'id="curves"' in page and all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', page))


def test_compare_needs_a_run():
    with pytest.raises(ValueError, match="at least one run directory"):
        write_comparison([], "x.html")


def _dataset(inputs, labels):
    return tf.data.Dataset.from_tensor_slices((inputs, np.asarray(labels)))


def test_save_test_examples_keeps_the_highest_loss_errors_with_their_images(tmp_path):
    images = np.stack([np.full((4, 4, 3), 50.0 * i, np.float32) for i in range(4)])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.95, 0.05], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1])  # errors: #1 (p_true 0.4) and #2 (p_true 0.05, the worst)
    save_test_examples(tmp_path, probabilities, labels, _dataset(images, labels), ["a", "b"], "multiclass", "image")
    index = json.loads((tmp_path / "examples" / "worst_errors.json").read_text())
    assert [e["index"] for e in index["examples"]] == [2, 1]
    assert index["examples"][0]["true"] == ["b"] and index["examples"][0]["predicted"] == ["a"]
    assert (index["errors"], index["examples_total"]) == (2, 4)
    png = tf.io.decode_png((tmp_path / index["examples"][0]["file"]).read_bytes()).numpy()
    assert png.shape == (4, 4, 3) and np.all(png == 100)
    rows = (tmp_path / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "index,true,predicted,confidence,a,b" and rows[3] == "2,b,a,0.950000,0.950000,0.050000"


def test_save_test_examples_of_grouped_audio_keeps_the_first_window_of_the_clip(tmp_path):
    windows = np.stack([np.full(160, 0.1 * i, np.float32) for i in range(5)])
    group_ids = np.array([0, 0, 1, 1, 1])
    probabilities, clip_labels = np.array([[0.8, 0.2], [0.7, 0.3]]), np.array([0, 1])

    class Preprocessor:
        sample_rate = 8000

    save_test_examples(tmp_path, probabilities, clip_labels, _dataset(windows, [0, 0, 1, 1, 1]), ["no", "yes"],
                       "multiclass", "audio", Preprocessor(), group_ids=group_ids)
    index = json.loads((tmp_path / "examples" / "worst_errors.json").read_text())
    (example,) = index["examples"]
    assert example["index"] == 1 and "first window" in index["note"]
    audio, rate = tf.audio.decode_wav((tmp_path / example["file"]).read_bytes())
    assert int(rate) == 8000 and np.allclose(audio.numpy()[:, 0], 0.2, atol=1e-4)  # window 2 = clip 1's first


def test_save_test_examples_detokenizes_text_without_special_tokens(tmp_path):
    import keras_hub

    from harness.text import VOCABULARY

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    inputs = preprocessor(tf.constant(["The cat sat", "Vote for the party"]))
    features = {"token_ids": inputs["token_ids"], "padding_mask": tf.cast(inputs["padding_mask"], tf.int32)}

    class TextPreprocessor:
        pass

    text_preprocessor = TextPreprocessor()
    text_preprocessor.tokenizer = preprocessor
    save_test_examples(tmp_path, np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([1, 1]), _dataset(features, [1, 1]),
                       ["pets", "politics"], "multiclass", "text", text_preprocessor)
    index = json.loads((tmp_path / "examples" / "worst_errors.json").read_text())
    assert [e["text"] for e in index["examples"]] == ["the cat sat"]


def test_save_test_examples_multilabel_errors_name_every_class(tmp_path):
    probabilities = np.array([[0.9, 0.8, 0.1], [0.9, 0.1, 0.1]])
    labels = np.array([[1, 1, 0], [1, 0, 1]], np.float32)  # the second misses class c
    save_test_examples(tmp_path, probabilities, labels, _dataset(np.zeros((2, 4, 4, 3), np.float32), labels),
                       ["a", "b", "c"], "multilabel", "image")
    (example,) = json.loads((tmp_path / "examples" / "worst_errors.json").read_text())["examples"]
    assert (example["index"], example["true"], example["predicted"]) == (1, ["a", "c"], ["a"])


def test_a_phase_that_kept_its_starting_weights_has_no_kept_epoch_of_its_own(tmp_path):
    history = {"loss": [1.0, 0.9], "val_loss": [0.8, 0.9]}
    (curve,) = phase_curves([{"name": "tune", "epochs_run": 2, "history": history,
                              "best_epoch": {"kept_epoch": 0, "stopped_early": False}}], [])
    assert curve.kept_epoch == 0
    run_dir = write_run_dir(tmp_path / "run")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["phases"][1]["best_epoch"] = {"kept_epoch": 0, "stopped_early": False}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    write_report(run_dir)
    assert "none: kept the weights it started with" in (run_dir / "report.html").read_text()
