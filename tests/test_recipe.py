"""Recipes: typed YAML loading, errors that name the key, `--set` overrides."""

import glob
import os

import pytest

from tfx_transfer.config import ConfigError
from tfx_transfer.recipe import Recipe, load_recipe, recipe_from_dict


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_defaults_give_two_phases_head_then_fine_tune():
    recipe = Recipe()
    assert [p.name for p in recipe.phases] == ["head", "fine_tune"]
    assert recipe.phases[0].freeze.trainable == "none" and recipe.phases[1].freeze.last_blocks == 2
    assert recipe.phases[1].learning_rate < recipe.phases[0].learning_rate
    assert recipe.phases[1].freeze.batchnorm == "frozen"


def test_typo_names_the_key_and_suggests_the_right_one(tmp_path):
    path = _write(tmp_path, "name: x\ndata:\n  batch_szie: 8\n")
    with pytest.raises(ConfigError, match=r"recipe\.data: unknown key 'batch_szie'\. Did you mean 'batch_size'\?"):
        load_recipe(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("data: {batch_size: eight}", r"recipe\.data\.batch_size: expected an integer, received 'eight'"),
        ("phases: [{name: a, learning_rate: fast}]", r"recipe\.phases\[0\]\.learning_rate: expected a number"),
        ("head: {kind: softmax}", r"recipe\.head\.kind: expected one of 'multiclass', 'binary', 'multilabel'"),
        ("phases: [{name: a, freeze: {batchnorm: frozn}}]", r"freeze\.batchnorm: expected one of 'frozen', 'train'"),
        ("phases: []", "at least one phase"),
        ("phases: [{name: a}, {name: a}]", "unique"),
        ("data: {validation_fraction: 0.6, test_fraction: 0.5}", "must leave training examples"),
        ("export: {enabled: yes please}", r"recipe\.export\.enabled: expected true or false"),
        ("- a\n- b\n", r"recipe\.yaml' must hold a mapping at the top level .*, received a list\."),
        ("", r"recipe\.yaml' must hold a mapping at the top level .*, received an empty document\."),
        ("# only a comment\n", "received an empty document"),
        ("null\n", "received an empty document"),
        ("phases: [{name: a, class_weight: balanced}]", "class_weight must be 'auto'"),
        ("phases: [{name: a, min_steps: 0}]", r"phase 'a': min_steps must be in \[1, 1000000\] or null, received 0\."),
    ],
)
def test_wrong_values_name_key_expected_and_received(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(_write(tmp_path, text))


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "data: [unclosed"))


def test_yaml_python_tags_are_refused(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(path)


def test_overrides_reach_nested_keys_and_list_items(tmp_path):
    path = _write(tmp_path, "name: x\n")
    recipe = load_recipe(
        path,
        ["data.batch_size=8", "phases.1.epochs=7", "phases.1.freeze.include=[top_]", "backbone.image_size=[96, 96]"],
    )
    assert recipe.data.batch_size == 8
    assert recipe.phases[1].epochs == 7 and recipe.phases[1].freeze.include == ["top_"]
    assert recipe.backbone.image_size == [96, 96]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batchsize=8", "unknown key 'batchsize'"),
        ("phases.5.epochs=1", "not an index of a 2-item list"),
        ("nokeyvalue", "expects key=value"),
        ("data.batch_size=0", "batch_size must be at least 1"),
        ("backbone.sequence_length=0", r"backbone\.sequence_length must be at least 3 .* received 0\."),
        ("backbone.sequence_length=-1", r"backbone\.sequence_length must be at least 3 .* received -1\."),
        ("backbone.sequence_length=100000000", r"at most 65536, received 100000000\."),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict({}, [override])


def test_cli_refuses_a_sequence_length_without_room_for_text_in_one_line(tmp_path, capsys):
    from tfx_transfer.cli import main

    assert main(["train", str(_write(tmp_path, "modality: text\n")), "--set", "backbone.sequence_length=0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "tfx-transfer: error: backbone.sequence_length must be at least 3 (tokens for [CLS], [SEP] and one of the "
        "text) and at most 65536, received 0."
    ]


def test_recipe_round_trips_through_yaml(tmp_path):
    recipe = recipe_from_dict({"name": "rt", "phases": [{"name": "only", "class_weight": {0: 2.0}}]})
    again = load_recipe(_write(tmp_path, recipe.to_yaml()))
    assert again == recipe


def test_phase_fine_tuning_keys_parse_and_override():
    recipe = recipe_from_dict(
        {"phases": [{"name": "head"}, {"name": "fine_tune", "layer_decay": 0.8,
                                       "lr_multipliers": {"transformer_layer_[0-3]": 0.1}, "monitor": "val_macro_f1"}]},
        ["phases.1.layer_decay=0.7", "phases.0.keep_best_epoch=false"],
    )
    fine_tune = recipe.phases[1]
    assert (fine_tune.layer_decay, fine_tune.lr_multipliers, fine_tune.monitor) == (
        0.7, {"transformer_layer_[0-3]": 0.1}, "val_macro_f1"
    )
    assert recipe.phases[0].keep_best_epoch is False and recipe.phases[0].layer_decay is None


@pytest.mark.parametrize(
    "phase, message",
    [
        ({"layer_decay": 0}, r"phase 'p': layer_decay must be in \(0, 1\], received 0"),
        ({"lr_multipliers": {"block(": 0.1}}, r"phase 'p': lr_multipliers key 'block\(' is not a valid regular"),
        ({"lr_multipliers": {"stem": 0}}, r"lr_multipliers\['stem'\] must be a number in \(0, 10\], received 0"),
        ({"monitor": "val_f1"}, r"monitor"),
    ],
)
def test_bad_fine_tuning_keys_name_the_phase_and_value(phase, message):
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict({"phases": [{"name": "p", **phase}]})


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "recipes", "*.yaml"))))
def test_every_shipped_recipe_fills_the_schema(path):
    recipe = load_recipe(path)
    assert recipe.phases and recipe.name == os.path.splitext(os.path.basename(path))[0]
