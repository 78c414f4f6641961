"""Long documents cut into token windows in-graph: the text counterpart of audio's `long_clips: windows`.

A whole document string is tokenized once, its tokens are cut into windows of
`sequence_length - 2` tokens every `stride` tokens, and each window gets the
start and end tokens the backbone expects (`[CLS] ... [SEP]` for BERT), then
padding, exactly as the backbone's `TextClassifierPreprocessor` packs one
segment. So a document that fits one window gives the same tensors as today's
truncating preprocessor, including empty and one-token documents. At most
`max_windows` windows are kept per document (the first ones); longer documents
are truncated and reported, never dropped. Everything is core TF plus the
tokenizer's own ops, so the same code runs in tf.data and in the SavedModel.

>>> import keras_hub
>>> tokenizer = keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])
>>> windows = TextWindows(tokenizer, sequence_length=5, stride=2, max_windows=2)
>>> inputs, document, truncated = windows(tf.constant(["a b c a b c a", "", "c"]))
>>> inputs["token_ids"].numpy().tolist()
[[2, 5, 6, 7, 3], [2, 7, 5, 6, 3], [2, 3, 0, 0, 0], [2, 7, 3, 0, 0]]
>>> document.numpy().tolist(), truncated.numpy().tolist()
([0, 0, 1, 2], [True, False, False])
"""

import dataclasses

import numpy as np
import tensorflow as tf

MAX_WINDOWS_LIMIT = 256
# A bound on the characters tokenized per document, generous against the ~4-5 characters of an
# English word piece: a request can be large, the work done on it cannot.
CHARACTERS_PER_TOKEN_BOUND = 32


def _single_id(tokenizer, name):
    value = getattr(tokenizer, name, None)
    if not isinstance(value, int):
        raise ValueError(
            f"Text windows need the tokenizer's {name} (one token id), but {type(tokenizer).__name__} has "
            f"{value!r}. Use a KerasHub text backbone (BERT, DistilBERT, RoBERTa, ...) for "
            "data.text.long_texts: windows, or set data.text.long_texts: truncate."
        )
    return value


class TextWindows(tf.Module):
    """Document strings `[B]` -> token windows `[N, sequence_length]`, the document of each, and which were cut.

    `tokenizer` is a KerasHub tokenizer (`start_token_id`, `end_token_id`,
    `pad_token_id`). `stride` is the step between window starts in tokens,
    at most the window's `sequence_length - 2` content tokens (the default:
    windows side by side, no overlap). Calling returns
    `(inputs, document, truncated)`: `inputs` holds int32 `token_ids`,
    `padding_mask` and `segment_ids` `[N, sequence_length]`; `document` int32
    `[N]` is each window's row in the batch; `truncated` bool `[B]` marks
    documents that had more than `max_windows` windows (or more than
    `CHARACTERS_PER_TOKEN_BOUND` characters per kept token) and were cut.
    """

    def __init__(self, tokenizer, sequence_length: int, stride: int | None = None, max_windows: int = 8):
        super().__init__(name="text_windows")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.content_length = self.sequence_length - 2
        if self.content_length < 1:
            raise ValueError(f"sequence_length must be at least 3 for text windows, received {sequence_length}.")
        self.stride = self.content_length if stride is None else int(stride)
        if not 1 <= self.stride <= self.content_length:
            raise ValueError(
                f"The window stride must be between 1 and sequence_length - 2 = {self.content_length} tokens "
                f"(a larger stride would skip tokens), received {stride}."
            )
        self.max_windows = int(max_windows)
        if not 1 <= self.max_windows <= MAX_WINDOWS_LIMIT:
            raise ValueError(f"max_windows must be between 1 and {MAX_WINDOWS_LIMIT}, received {max_windows}.")
        self.start_id = _single_id(tokenizer, "start_token_id")
        self.end_id = _single_id(tokenizer, "end_token_id")
        self.pad_id = _single_id(tokenizer, "pad_token_id")
        self.max_tokens = self.content_length + self.stride * (self.max_windows - 1)

    def windows_needed(self, num_tokens):
        """Windows that cover `num_tokens` tokens (at least 1, also for an empty document), before the bound."""
        num_tokens = tf.cast(num_tokens, tf.int32)
        beyond_first = tf.maximum(num_tokens - self.content_length, 0)
        return 1 + (beyond_first + self.stride - 1) // self.stride

    # A tf.function also when called eagerly: KerasHub tokenizers return Python lists in eager mode.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        max_characters = self.max_tokens * CHARACTERS_PER_TOKEN_BOUND
        cut_characters = tf.strings.length(text, unit="UTF8_CHAR") > max_characters
        token_ids = self.tokenizer(tf.strings.substr(text, 0, max_characters, unit="UTF8_CHAR"))
        num_tokens = tf.cast(token_ids.row_lengths(), tf.int32)
        needed = self.windows_needed(num_tokens)
        kept = tf.minimum(needed, self.max_windows)
        document = tf.repeat(tf.range(tf.size(kept)), kept)
        starts = tf.ragged.range(kept).flat_values * self.stride
        positions = starts[:, None] + tf.range(self.content_length)[None, :]
        real = positions < tf.gather(num_tokens, document)[:, None]
        # Index len(values) is a pad appended to the values, so windows past a document's end
        # (and an all-empty batch) gather pads.
        values = tf.concat([tf.cast(token_ids.flat_values, tf.int32), [self.pad_id]], 0)
        first = tf.cast(tf.gather(token_ids.row_starts(), document), tf.int32)
        content = tf.gather(values, tf.where(real, first[:, None] + positions, tf.size(values) - 1))
        count = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        num_windows = tf.shape(document)[0]
        packed = tf.concat(
            [tf.fill([num_windows, 1], self.start_id), content, tf.fill([num_windows, 1], self.pad_id)], axis=1
        )
        columns = tf.range(self.sequence_length)[None, :]
        packed = tf.where(columns == (count + 1)[:, None], self.end_id, packed)
        inputs = {
            "token_ids": packed,
            "padding_mask": tf.cast(columns < (count + 2)[:, None], tf.int32),
            "segment_ids": tf.zeros_like(packed),
        }
        return inputs, document, (needed > self.max_windows) | cut_characters


@dataclasses.dataclass
class WindowedTexts:
    """The windows of a list of texts as training or evaluation examples.

    `dataset` holds unbatched `(token tensors, label)` pairs, one per window,
    the windows of a text consecutive and labelled as the text; `document` is
    the text index of each window (for per-text metrics); `truncated` lists
    the indices of texts cut to `max_windows` windows.
    """

    dataset: tf.data.Dataset
    document: np.ndarray
    truncated: list[int]


def window_examples(texts, labels, preprocessor, batch_size: int = 256) -> WindowedTexts:
    """Cuts every text into windows with `preprocessor.raw_to_windows` (a `TextPreprocessor` with windows).

    Tokenizes the texts once here to count windows and truncated texts, and
    again, lazily, in the returned tf.data pipeline.
    """
    texts = tf.constant(list(texts), tf.string)
    documents, truncated = [], []
    for start in range(0, int(texts.shape[0]), batch_size):
        _, document, cut = preprocessor.text_windows(preprocessor.clean(texts[start:start + batch_size]))
        documents.append(document.numpy() + start)
        truncated.extend((np.flatnonzero(cut.numpy()) + start).tolist())
    document = np.concatenate(documents) if documents else np.zeros([0], np.int32)

    def to_windows(text, label):
        inputs, window_document = preprocessor.raw_to_windows(text)
        return inputs, tf.gather(label, window_document)

    dataset = (
        tf.data.Dataset.from_tensor_slices((texts, np.asarray(labels)))
        .batch(batch_size)
        .map(to_windows, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .apply(tf.data.experimental.assert_cardinality(len(document)))
    )
    return WindowedTexts(dataset, document, truncated)
