"""Tiny KerasHub presets and text folders made inside tests (random weights, no downloads)."""

import pathlib

WORDS = (
    "the a of and to in is was on for cat dog bird fish sat ran flew swam mat log sky sea "
    "goal match team score vote party minister election market shares profit bank film music star show"
).split()
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS

TOPICS = {
    "business": "market shares profit bank",
    "politics": "vote party minister election",
    "sport": "goal match team score",
}


def save_tiny_bert_preset(directory, num_layers=2, hidden_dim=16, max_sequence_length=64, seed=0):
    """A random-weight BERT (2 layers, 16 wide) with its tokenizer and preprocessor as a local KerasHub preset."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=num_layers, num_heads=2, hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim, max_sequence_length=max_sequence_length, dropout=0.0,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=max_sequence_length)
    backbone.save_to_preset(str(directory))
    preprocessor.save_to_preset(str(directory))
    return str(directory)


def write_topic_folder(root, per_class=12, seed=0):
    """`root/<topic>/<n>.txt` files whose words reveal the topic, plus one empty and one invalid-UTF-8 file."""
    import random

    rng = random.Random(seed)
    root = pathlib.Path(root)
    for topic, words in TOPICS.items():
        (root / topic).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            text = " ".join(rng.choice(words.split() + ["the", "a", "of"]) for _ in range(rng.randint(4, 12)))
            (root / topic / f"{i:03d}.txt").write_text(text.capitalize() + ".", encoding="utf-8")
    (root / "sport" / "empty.txt").write_text("  \n", encoding="utf-8")
    (root / "politics" / "latin1.txt").write_bytes("Caf\xe9 vote".encode("latin-1"))
    return str(root)


def windowed_topics_recipe(work, phases, sequence_length=12):
    """A recipe dict: a topic folder with long texts (several windows each) on a tiny preset, read in windows."""
    work = pathlib.Path(work)
    root = write_topic_folder(work / "topics", per_class=14)
    for topic, words in {"sport": "goal match team", "business": "market shares profit"}.items():
        for n in range(6):
            (work / "topics" / topic / f"long{n}.txt").write_text(f"{words} the cat sat " * (8 + n), encoding="utf-8")
    return {
        "name": "topics", "modality": "text", "seed": 5, "run_dir": str(work / "run"),
        "data": {"source": "folder", "path": root, "batch_size": 8, "text": {"long_texts": "windows", "max_windows": 3}},
        "backbone": {"source": "kerashub", "name": save_tiny_bert_preset(work / "preset"), "sequence_length": sequence_length},
        "phases": phases,
        "export": {"enabled": False},
    }


def per_text_validation_report(recipe, model):
    """`evaluate.classification_report` of `model` on `recipe`'s validation texts, windows averaged per text."""
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone
    from tfx_transfer.data.text import load_data
    from tfx_transfer.evaluate import classification_report, predict_probabilities

    splits = load_data(recipe, build_kerashub_backbone(recipe.backbone.name, recipe.backbone.sequence_length))
    assert len(splits.validation_groups) > len(set(splits.validation_groups.tolist()))  # some texts have windows
    probabilities, labels = predict_probabilities(
        model, splits.validation, 8, recipe.head.kind, group_ids=splits.validation_groups,
    )
    return classification_report(probabilities, labels, splits.class_names)
