"""Audio input pipeline: WAV folders or CSV manifests -> fixed-length 16 kHz mono waveforms."""

import csv
import dataclasses
import os
import re
import sys
import time
from typing import Literal

import numpy as np
import tensorflow as tf

from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits
from tfx_transfer.data.splits import class_counts, stratified_split


@dataclasses.dataclass
class AudioOptions:
    """How WAV files become the fixed-length waveforms an audio backbone takes.

    Every file is decoded, mixed down to mono and resampled to `sample_rate`.
    Clips shorter than `clip_seconds` are zero-padded; longer ones are cropped
    (`long_clips: crop`, centred) or cut into `clip_seconds` windows every
    `window_hop_seconds` (`long_clips: windows`), each a training example of
    the same group.

    Augmentation (training split only): a random gain in `[-gain_db, +gain_db]`,
    a random shift by up to `time_shift_seconds` (zero-filled), and, with
    probability `noise_probability`, a random segment of a WAV from `noise_dir`
    mixed in at a signal-to-noise ratio drawn from `noise_snr_db` (low, high).

    Groups: clips of one group never land in two splits. A CSV manifest names
    the group in `group_column` (default `group`, e.g. the speaker or voice);
    otherwise `group_pattern`, a regex whose first capture group is taken from
    the file name (e.g. `"^(.+?)_nohash_"` for Speech Commands), or else the
    file itself is the group.
    """

    clip_seconds: float = 1.0
    sample_rate: int = 16000
    long_clips: Literal["crop", "windows"] = "crop"
    window_hop_seconds: float | None = None
    gain_db: float = 0.0
    time_shift_seconds: float = 0.0
    noise_dir: str | None = None
    noise_snr_db: list[float] = dataclasses.field(default_factory=lambda: [5.0, 20.0])
    noise_probability: float = 0.5
    group_column: str = "group"
    group_pattern: str | None = None

    def __post_init__(self):
        if self.clip_seconds <= 0:
            raise ConfigError(f"data.audio.clip_seconds must be positive, received {self.clip_seconds}.")
        if self.sample_rate < 1000:
            raise ConfigError(f"data.audio.sample_rate must be at least 1000 Hz, received {self.sample_rate}.")
        if self.window_hop_seconds is not None and self.window_hop_seconds <= 0:
            raise ConfigError(
                f"data.audio.window_hop_seconds must be positive, received {self.window_hop_seconds}."
            )
        if self.gain_db < 0 or self.time_shift_seconds < 0:
            raise ConfigError(
                "data.audio.gain_db and data.audio.time_shift_seconds are maximum magnitudes and must "
                f"be >= 0, received {self.gain_db} and {self.time_shift_seconds}."
            )
        if len(self.noise_snr_db) != 2 or self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ConfigError(
                f"data.audio.noise_snr_db must be [low, high] with low <= high, received {self.noise_snr_db}."
            )
        if not 0.0 <= self.noise_probability <= 1.0:
            raise ConfigError(
                f"data.audio.noise_probability must be in [0, 1], received {self.noise_probability}."
            )

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        hop = self.window_hop_seconds if self.window_hop_seconds is not None else self.clip_seconds / 2
        return max(1, int(round(hop * self.sample_rate)))
