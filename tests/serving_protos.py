"""TF Serving's `BatchingParameters` and `MonitoringConfig` messages, for parsing config files in tests.

The `tensorflow-serving-api` wheel (2.21) ships `model_server_config_pb2` but not these two
(`tensorflow_serving/servables/tensorflow/session_bundle_config.proto` and
`tensorflow_serving/config/monitoring_config.proto`), and no `.proto` sources. Their field
names, numbers and types are declared here as in those upstream files, so a config file with a
misspelt or mistyped field fails to parse.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _field(name, number, kind, type_name=None, repeated=False):
    field = _F(name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name
    return field


def _messages():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfx_transfer_tests/serving_configs.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    int64 = ".google.protobuf.Int64Value"
    proto.message_type.add(name="BatchingParameters", field=[
        _field("max_batch_size", 1, _F.TYPE_MESSAGE, int64),
        _field("batch_timeout_micros", 2, _F.TYPE_MESSAGE, int64),
        _field("max_enqueued_batches", 3, _F.TYPE_MESSAGE, int64),
        _field("num_batch_threads", 4, _F.TYPE_MESSAGE, int64),
        _field("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue"),
        _field("allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True),
        _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
    ])
    proto.message_type.add(name="PrometheusConfig", field=[
        _field("enable", 1, _F.TYPE_BOOL),
        _field("path", 2, _F.TYPE_STRING),
    ])
    proto.message_type.add(name="MonitoringConfig", field=[
        _field("prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig"),
    ])
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }


MESSAGES = _messages()
BatchingParameters = MESSAGES["BatchingParameters"]
MonitoringConfig = MESSAGES["MonitoringConfig"]
