"""Recipe numbers as people write them (`1e-4`, `.5`, `1_000`), and `--set` values that are not YAML."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfx_transfer.cli import main
from tfx_transfer.config import ConfigError, parse_override
from tfx_transfer.recipe import load_recipe, recipe_from_dict


@pytest.mark.parametrize(
    "written, value",
    [("1e-4", 1e-4), ("1E-4", 1e-4), (".5", 0.5), ("1_000", 1000.0), ("+3", 3.0), ("'2.5e-3'", 2.5e-3)],
)
def test_float_fields_read_numbers_as_people_write_them(tmp_path, written, value):
    path = tmp_path / "r.yaml"
    path.write_text(f"phases: [{{name: a, learning_rate: {written}}}]\ncache_limit_mb: {written}\n")
    recipe = load_recipe(path)
    assert recipe.phases[0].learning_rate == pytest.approx(value)
    assert recipe.cache_limit_mb == pytest.approx(value)


@pytest.mark.parametrize("override", ["phases.0.learning_rate=1e-4", "phases.0.learning_rate=1E-4"])
def test_set_reads_exponents_without_a_dot(override):
    assert recipe_from_dict({}, [override]).phases[0].learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize("written, value", [("1_000", 1000), ("+3", 3), ("'64'", 64)])
def test_int_fields_read_underscores_signs_and_quoted_digits(written, value):
    assert recipe_from_dict({}, [f"data.batch_size={written}"]).data.batch_size == value


@pytest.mark.parametrize("written", ["2.5", "1e3", "ten", "nan"])
def test_int_fields_reject_what_is_not_an_integer(written):
    with pytest.raises(ConfigError, match=r"recipe.data.batch_size: expected an integer, received"):
        recipe_from_dict({}, [f"data.batch_size={written}"])


@pytest.mark.parametrize("written", ["nan", ".nan", ".inf", "-.inf", "inf", "NaN"])
def test_non_finite_numbers_are_refused_with_the_key(written):
    with pytest.raises(ConfigError, match=r"recipe.phases\[0\].learning_rate: expected a finite number"):
        recipe_from_dict({}, [f"phases.0.learning_rate={written}"])


def test_string_fields_keep_number_like_text_as_written():
    recipe = recipe_from_dict({"name": "1e-4", "backbone": {"output": "1_000", "weights": ".5"}})
    assert (recipe.name, recipe.backbone.output, recipe.backbone.weights) == ("1e-4", "1_000", ".5")


def test_a_set_value_that_is_not_yaml_names_the_override():
    with pytest.raises(ConfigError, match=r"--set 'a=\[1,': the value '\[1,' is not valid YAML"):
        parse_override("a=[1,")


def test_cli_reports_a_bad_set_value_in_one_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\n")
    assert main(["train", str(recipe), "--set", "a=[1,"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "tfx-transfer: error: --set 'a=[1,': the value '[1,' is not valid YAML (expected the node content, "
        "but found '<stream end>'); to pass text, quote it: --set 'a=\"...\"'."
    ]


_KEYS = st.sampled_from(
    ["data.batch_size", "phases.0.learning_rate", "phases.1.epochs", "head.dropout", "name",
     "backbone.image_size", "phases.0.class_weight", "data.audio.noise_snr_db", "nokey", "data.x.y"]
)


@settings(max_examples=150, deadline=None)
@given(key=_KEYS, raw=st.text(max_size=20))
def test_fuzzed_overrides_give_a_recipe_or_a_config_error(key, raw):
    """Whatever text follows `key=`, the result is a recipe or a ConfigError, never another exception."""
    try:
        recipe_from_dict({}, [f"{key}={raw}"])
    except ConfigError as e:
        assert str(e).strip() and "\n" not in str(e).strip()
