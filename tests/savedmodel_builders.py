"""Small TF2 SavedModels in the TF-Hub conventions, built inside tests (no hub downloads)."""

import numpy as np
import tensorflow as tf


def _hub_object(call, variables, trainable_variables, regularization_losses=()):
    """A trackable root in the TF-Hub reusable SavedModel convention."""
    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = list(variables)
    root.trainable_variables = list(trainable_variables)
    root.regularization_losses = list(regularization_losses)
    return root


def save_dense_module(path, input_dim=4, output_dim=3, seed=0, l2=0.01):
    """`__call__(x [B, input_dim] float32, training)` -> `x @ kernel + bias`, in the TF-Hub convention.

    Has a non-trainable `moving_mean` that the call updates only when
    `training=True` (like BatchNorm), and an L2 regularization loss on the kernel.
    """
    rng = np.random.default_rng(seed)
    kernel = tf.Variable(rng.normal(size=(input_dim, output_dim)).astype("float32"), name="dense/kernel")
    bias = tf.Variable(np.zeros(output_dim, "float32"), name="dense/bias")
    moving_mean = tf.Variable(np.zeros(input_dim, "float32"), trainable=False, name="norm/moving_mean")

    @tf.function
    def call(x, training=False):
        if training:
            moving_mean.assign(0.9 * moving_mean + 0.1 * tf.reduce_mean(x, axis=0))
        return tf.matmul(x, kernel) + bias

    spec = tf.TensorSpec([None, input_dim], tf.float32)
    for training in (True, False):
        call.get_concrete_function(spec, training)
    regularizer = tf.function(lambda: l2 * tf.reduce_sum(tf.square(kernel)), input_signature=[])
    root = _hub_object(call, [kernel, bias, moving_mean], [kernel, bias], [regularizer])
    tf.saved_model.save(root, str(path))
    return path


def save_tf1_module(path, input_dim=3, output_dim=2):
    """A TF1-format SavedModel (graph + `default` signature), as old TF-Hub modules are."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, input_dim], name="x")
        w = tf.compat.v1.get_variable("w", [input_dim, output_dim], initializer=tf.compat.v1.ones_initializer())
        y = tf.matmul(x, w)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"default": y})
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"default": signature})
            builder.save()
    return path


BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def _pack(tokens, seq_length, cls_id, sep_id):
    """TF-Hub `bert_pack_inputs` for one segment: `[CLS] tokens [SEP]`, truncated and zero-padded."""
    tokens = tokens.merge_dims(-2, -1)[:, : seq_length - 2]
    batch = tokens.nrows()
    cls = tf.fill([batch, 1], tf.constant(cls_id, tokens.dtype))
    sep = tf.fill([batch, 1], tf.constant(sep_id, tokens.dtype))
    ids = tf.concat([cls, tokens, sep], axis=1)
    shape = tf.stack([batch, tf.cast(seq_length, tf.int64)])
    word_ids = tf.cast(ids.to_tensor(shape=shape), tf.int32)
    mask = tf.cast(tf.ones_like(ids).to_tensor(shape=shape), tf.int32)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": tf.zeros_like(word_ids)}


def save_bert_preprocessor(path, words):
    """A TF-Hub BERT preprocessing SavedModel over a whitespace vocabulary (core TF ops only).

    `tokenize(strings)` -> ragged `[B, words, 1]` ids; `bert_pack_inputs([tokens], seq_length)`
    -> int32 `input_word_ids`, `input_mask`, `input_type_ids`; `__call__` packs to 16 tokens.
    """
    vocab = BERT_SPECIAL_TOKENS + list(words)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)), default_value=1
    )
    root = tf.train.Checkpoint()
    root.table = table

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(text):
        words = tf.ragged.map_flat_values(table.lookup, tf.strings.split(tf.strings.lower(text, encoding="utf-8")))
        one_piece_each = tf.range(tf.size(words.flat_values, out_type=tf.int64) + 1)
        return tf.RaggedTensor.from_row_splits(
            tf.RaggedTensor.from_row_splits(words.flat_values, one_piece_each), words.row_splits
        )

    ragged_spec = tf.RaggedTensorSpec([None, None, None], tf.int64, ragged_rank=2)

    @tf.function(input_signature=[[ragged_spec], tf.TensorSpec([], tf.int32)])
    def bert_pack_inputs(segments, seq_length):
        return _pack(segments[0], seq_length, 2, 3)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def call(text):
        return bert_pack_inputs([tokenize(text)], tf.constant(16))

    root.tokenize, root.bert_pack_inputs, root.__call__ = tokenize, bert_pack_inputs, call
    tf.saved_model.save(root, str(path))
    return path


def save_bert_encoder(path, vocab_size, hidden=8, seed=0):
    """A tiny TF-Hub BERT-convention encoder: `__call__(inputs, training)` -> `sequence_output`,
    `pooled_output`, `default`; trainable embeddings and projection, an L2 regularization loss."""
    rng = np.random.default_rng(seed)
    embeddings = tf.Variable(rng.normal(size=(vocab_size, hidden)).astype("float32"), name="embeddings")
    projection = tf.Variable(rng.normal(size=(hidden, hidden)).astype("float32") / hidden, name="layer_0/kernel")
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in ("input_word_ids", "input_mask", "input_type_ids")}

    @tf.function
    def call(inputs, training=False):
        x = tf.gather(embeddings, inputs["input_word_ids"])
        if training:
            x = tf.nn.dropout(x, 0.1)
        sequence = tf.tanh(tf.einsum("bth,hk->btk", x, projection))
        sequence *= tf.cast(inputs["input_mask"], tf.float32)[..., None]
        pooled = tf.tanh(sequence[:, 0])
        return {"sequence_output": sequence, "pooled_output": pooled, "default": pooled}

    for training in (True, False):
        call.get_concrete_function(spec, training)
    regularizer = tf.function(lambda: 1e-4 * tf.reduce_sum(tf.square(projection)), input_signature=[])
    tf.saved_model.save(_hub_object(call, [embeddings, projection], [embeddings, projection], [regularizer]), str(path))
    return path


def export_keras_hub_bert_to_tfhub(backbone, vocabulary_file, encoder_path, preprocessor_path):
    """Writes a KerasHub `BertBackbone` and its uncased WordPiece vocabulary in the TF-Hub BERT
    convention: the encoder SavedModel runs the backbone's own variables, the preprocessor uses
    TF Text's `BertTokenizer` (lowercase + accent stripping, as Hugging Face uncased models)."""
    import tensorflow_text as tf_text

    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in ("input_word_ids", "input_mask", "input_type_ids")}

    @tf.function
    def call(inputs, training=False):
        outputs = backbone(
            {"token_ids": inputs["input_word_ids"], "padding_mask": inputs["input_mask"],
             "segment_ids": inputs["input_type_ids"]},
            training=training,
        )
        return {**outputs, "default": outputs["pooled_output"]}

    for training in (True, False):
        call.get_concrete_function(spec, training)
    encoder = _hub_object(
        call, [v.value for v in backbone.variables], [v.value for v in backbone.trainable_weights]
    )
    encoder.backbone = backbone
    tf.saved_model.save(encoder, str(encoder_path))

    vocab = [line.rstrip("\n") for line in open(vocabulary_file, encoding="utf-8")]
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)), num_oov_buckets=1
    )
    tokenizer = tf_text.BertTokenizer(table, lower_case=True, token_out_type=tf.int64, unknown_token="[UNK]")
    root = tf.train.Checkpoint()
    root.tokenizer_table = table

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(text):
        return tokenizer.tokenize(text)

    ragged_spec = tf.RaggedTensorSpec([None, None, None], tf.int64, ragged_rank=2)

    @tf.function(input_signature=[[ragged_spec], tf.TensorSpec([], tf.int32)])
    def bert_pack_inputs(segments, seq_length):
        return _pack(segments[0], seq_length, vocab.index("[CLS]"), vocab.index("[SEP]"))

    root.tokenize, root.bert_pack_inputs = tokenize, bert_pack_inputs
    tf.saved_model.save(root, str(preprocessor_path))
