"""A functional sub-model from intermediate tensors without Keras re-pointing the model's inputs.

Upstream: Keras 3.15.1 `keras.Model(boundary, model.output)` clones the graph
(`functional.clone_graph_nodes`) and, when a boundary tensor is one of `model`'s
`keras.Input`s (a transformer's padding mask), re-points that input at the clone's node,
after which `model` can no longer be saved ("could not find node key"). No upstream issue
filed yet; search keras-team/keras for `clone_graph_nodes` "could not find node key".
Remove when tests/compat/test_keras_clone_graph.py::
test_keras_model_from_an_input_and_intermediate_tensors_still_corrupts_the_input fails:
`replay_after` can then become `keras.Model(boundary, model.output)`.
"""

import keras


def replay_after(model: keras.Model, boundary, skipped_layers) -> keras.Model:
    """A model from new inputs standing for `boundary` to `model.output`, calling `model`'s own layers.

    Not `keras.Model(boundary, model.output)`: in Keras 3.15.1 that clones the graph
    (`functional.clone_graph_nodes`) and, when a boundary tensor is one of `model`'s
    `keras.Input`s (a transformer's padding mask), re-points that input at the clone's
    node, after which `model` can no longer be saved ("could not find node key").
    tests/compat/test_keras_clone_graph.py pins the bug (and tests/test_text_kerashub.py on a transformer).
    """
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=f"{model.name}_boundary_{i}") for i, t in enumerate(boundary)]
    tensors = {id(old): new for old, new in zip(boundary, inputs)}

    def replace(value):
        return tensors.get(id(value), value) if isinstance(value, keras.KerasTensor) else value

    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or node.operation.name in skipped_layers:
                continue
            args = keras.tree.map_structure(replace, node.arguments.args)
            kwargs = keras.tree.map_structure(replace, node.arguments.kwargs)
            for old, new in zip(keras.tree.flatten(node.outputs), keras.tree.flatten(node.operation(*args, **kwargs))):
                tensors[id(old)] = new
    return keras.Model(inputs, keras.tree.map_structure(replace, model.output), name=f"{model.name}_trainable_suffix")
