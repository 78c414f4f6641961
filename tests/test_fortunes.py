"""The fortunes short-text dataset: topics from Debian's fortune files written as a CSV the text loader reads."""

import csv
import json
import os

import pytest

from tfx_transfer.config import ConfigError
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.text import TextOptions, read_table
from tfx_transfer.datasets.fortunes import FORTUNES_DIR, make_fortunes, read_fortunes


def write_fortune_files(root):
    files = {
        "computers": ["Real programmers\n\tuse a hex editor.", "Unix is user-friendly.\n\t\t-- someone",
                      " ".join(["long"] * 50), "Shared joke."],
        "politics": ["Vote early, vote often.", "Shared joke.", "Politics is the art of the possible."],
        "science": ["E = mc^2, caf\u00e9 included.", "Entropy increases."],
    }
    os.makedirs(root, exist_ok=True)
    for topic, entries in files.items():
        with open(os.path.join(root, f"{topic}.u8"), "w", encoding="utf-8") as f:
            f.write("\n%\n".join(entries) + "\n%\n")
    return str(root)


def test_read_fortunes_splits_on_percent_lines_and_collapses_whitespace(tmp_path):
    root = write_fortune_files(tmp_path / "src")
    assert read_fortunes(os.path.join(root, "computers.u8"))[:2] == [
        "Real programmers use a hex editor.", "Unix is user-friendly. -- someone",
    ]


def test_make_fortunes_writes_a_csv_the_text_loader_reads(tmp_path):
    root = write_fortune_files(tmp_path / "src")
    path = make_fortunes(tmp_path / "out", topics=("science", "computers", "politics"), max_words=40, source_dir=root)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["text"]) for r in rows] == [
        ("computers", "Real programmers use a hex editor."),
        ("computers", "Unix is user-friendly. -- someone"),
        ("politics", "Vote early, vote often."),
        ("politics", "Politics is the art of the possible."),
        ("science", "E = mc^2, caf\u00e9 included."),
        ("science", "Entropy increases."),
    ]
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["counts"] == {"computers": 2, "politics": 2, "science": 2}
    assert info["left_out"] == {"longer than max_words": 1, "in several topics or repeated": 2}
    examples = read_table(path, TextOptions(), SkippedReport())
    assert len(examples.texts) == 6 and examples.labels[0] == "computers"


def test_missing_package_files_say_what_to_install(tmp_path):
    with pytest.raises(ConfigError, match=r"No fortune file .*work\.u8.*apt-get install fortunes"):
        make_fortunes(tmp_path / "out", topics=("computers", "work"), source_dir=write_fortune_files(tmp_path / "src"))
    with pytest.raises(ValueError, match="at least 2 topics"):
        make_fortunes(tmp_path / "out", topics=("computers",))


@pytest.mark.skipif(not os.path.isfile(os.path.join(FORTUNES_DIR, "computers.u8")), reason="Debian fortunes not installed")
def test_the_debian_package_gives_short_texts_in_five_topics(tmp_path):
    path = make_fortunes(tmp_path / "out")
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert sorted(info["counts"]) == ["computers", "men-women", "politics", "science", "work"]
    assert min(info["counts"].values()) > 300 and info["mean_words"] < 25
    assert os.path.getsize(path) > 100_000


def test_cli_make_fortunes_writes_the_csv_or_says_what_to_install(tmp_path, capsys):
    from tfx_transfer.cli import main

    root = write_fortune_files(tmp_path / "src")
    assert main(["datasets", "make-fortunes", str(tmp_path / "out"), "--source-dir", root]) == 2
    assert "men-women.u8" in capsys.readouterr().err
    for topic in ("men-women", "work"):
        (tmp_path / "src" / f"{topic}.u8").write_text(f"A {topic} joke.\n%\n", encoding="utf-8")
    assert main(["datasets", "make-fortunes", str(tmp_path / "out"), "--source-dir", root]) == 0
    assert str(tmp_path / "out" / "fortunes.csv") in capsys.readouterr().out
    assert (tmp_path / "out" / "fortunes.csv").read_text(encoding="utf-8").count("\n") == 9


def test_cli_make_fortunes_into_a_regular_file_exits_2_naming_it(tmp_path, capsys):
    from tfx_transfer.cli import main

    root = write_fortune_files(tmp_path / "src")
    (tmp_path / "file.txt").write_text("kept")
    args = ["datasets", "make-fortunes", str(tmp_path / "file.txt"), "--source-dir", root, "--topics", "politics,science"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ".tmp-" not in err
    assert err.strip().splitlines() == [
        f"tfx-transfer: error: Cannot write '{tmp_path / 'file.txt' / 'fortunes.csv'}': '{tmp_path / 'file.txt'}' "
        "is a file, where a directory was expected. Choose another path or move that file."
    ]


def test_sizes_draw_an_imbalanced_set_reproducibly_and_bad_sizes_are_refused(tmp_path, capsys):
    from tfx_transfer.cli import main

    root = write_fortune_files(tmp_path / "src")
    args = ["datasets", "make-fortunes", "--source-dir", root, "--topics", "politics,science", "--sizes", "2,1"]
    assert main([*args[:2], str(tmp_path / "a"), *args[2:]]) == 0
    info = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert info["counts"] == {"politics": 2, "science": 1} and info["sizes"] == {"politics": 2, "science": 1}
    assert main([*args[:2], str(tmp_path / "b"), *args[2:]]) == 0
    assert (tmp_path / "a" / "fortunes.csv").read_text() == (tmp_path / "b" / "fortunes.csv").read_text()
    with pytest.raises(ValueError, match="'science' has 2 texts.*5 were asked"):
        make_fortunes(tmp_path / "c", topics=("politics", "science"), sizes=(1, 5), source_dir=root)
    assert main([*args[:2], str(tmp_path / "d"), *args[2:-1], "2,x"]) == 2
    assert "--sizes takes comma-separated whole numbers" in capsys.readouterr().err
