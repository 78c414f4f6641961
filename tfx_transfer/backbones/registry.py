"""One entry point, `resolve`, from a backbone config to a `Backbone`, whatever its source."""

from typing import Callable

from tfx_transfer.backbones.base import Backbone

_SOURCES: dict[str, Callable] = {}


def register_source(name: str, build: Callable) -> None:
    """Makes `build(config: BackboneConfig) -> Backbone` available as `backbone.source: name`."""
    _SOURCES[name] = build


def resolve(config) -> Backbone:
    """Builds the backbone a `BackboneConfig` describes.

    >>> from tfx_transfer.recipe import BackboneConfig
    >>> resolve(BackboneConfig(name="MobileNetV2", weights="none", image_size=[32, 32])).name
    'MobileNetV2'
    """
    _register_builtin_sources()
    build = _SOURCES.get(config.source)
    if build is None:
        raise ValueError(
            f"backbone.source: unknown source {config.source!r}. Expected one of: "
            f"{', '.join(sorted(_SOURCES))}."
        )
    return build(config)


def _register_builtin_sources():
    if "keras_apps" in _SOURCES:
        return
    from tfx_transfer.backbones import keras_apps

    register_source(
        "keras_apps",
        lambda c: keras_apps.build_keras_app(c.name, weights=c.weights, image_size=c.image_size),
    )

    from tfx_transfer.backbones import packaged

    register_source("packaged", packaged.build_from_config)

    from tfx_transfer.backbones import hub_text, kerashub

    register_source(
        "kerashub",
        lambda c: kerashub.build_kerashub_backbone(c.name, c.sequence_length, c.pooling),
    )
    register_source(
        "hub_text",
        lambda c: hub_text.build_hub_text_backbone(c.name, c.preprocessor, c.sequence_length, c.pooling),
    )

    from tfx_transfer.backbones import hub_audio

    register_source(
        "hub_audio",
        lambda c: hub_audio.build_hub_audio_backbone(
            c.name, embeddings_output=1 if c.output is None else c.output, pooling=c.pooling
        ),
    )
