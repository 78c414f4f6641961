"""A STAND-IN for TF Serving, for client tests only: TF Serving's binary cannot be installed here.

It serves exported SavedModels on 127.0.0.1 the way `tensorflow_model_server` does what the
client relies on: it loads each version with `tf.compat.v1.saved_model.loader.load` into its
own session, runs the requested SignatureDef, and converts inputs and outputs through
TensorProtos (`tf.make_tensor_proto` / `tf.make_ndarray`), over REST
(`/v1/models/<m>[/versions/<v>|/labels/<l>]:predict` and `/metadata`, `{"b64": ...}` bytes,
`{"error": ...}` bodies with 404 for an unknown servable) and gRPC (`PredictionService`
`Predict` and `GetModelMetadata`, NOT_FOUND for an unknown servable). It is not TF Serving:
no batching, no version polling, no model config file.
"""

import base64
import concurrent.futures
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

MAX_REQUEST_BYTES = 16 * 1024 * 1024
ROUTE = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(:predict|/metadata)$")


class NotFound(Exception):
    pass


class _Servable:
    """One loaded version: a TF1 session running its SignatureDefs, as TF Serving runs them."""

    def __init__(self, export_dir):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], export_dir)
        self.lock = threading.Lock()

    def run(self, signature_name, input_protos):
        if signature_name not in self.meta.signature_def:
            raise ValueError(f"Serving signature name: \"{signature_name}\" not found in signature def")
        signature = self.meta.signature_def[signature_name]
        unknown = set(input_protos) - set(signature.inputs)
        if unknown:
            raise ValueError(f"input tensor alias not found in signature: {sorted(unknown)}")
        feed = {signature.inputs[k].name: tf.make_ndarray(v) for k, v in input_protos.items()}
        fetch = {k: v.name for k, v in signature.outputs.items()}
        with self.lock:
            outputs = self.session.run(fetch, feed)
        return {k: tf.make_tensor_proto(v) for k, v in outputs.items()}


class StandInServer:
    """Serves `{model: {version: export_dir}}` with version `labels` `{model: {label: version}}`.

    `delay_seconds` makes every answer wait that long (to test client timeouts).
    Use as a context manager; `rest_url` and `grpc_url` are the addresses.
    """

    def __init__(self, models, labels=None, delay_seconds=0.0):
        self.servables = {m: {int(v): _Servable(d) for v, d in versions.items()} for m, versions in models.items()}
        self.labels = labels or {}
        self.delay = threading.Event()
        self.delay_seconds = delay_seconds

    def find(self, model, version=None, label=None) -> _Servable:
        versions = self.servables.get(model)
        if versions is None:
            raise NotFound(f"Servable not found for request: Latest({model})")
        if label is not None:
            if label not in self.labels.get(model, {}):
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = self.labels[model][label]
        if version is None:
            version = max(versions)
        if version not in versions:
            raise NotFound(f"Servable not found for request: Specific({model}, {version})")
        return versions[version]

    def wait(self):
        if self.delay_seconds:
            self.delay.wait(self.delay_seconds)  # set() at shutdown ends the wait: bounded

    def __enter__(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._handle(None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                if length > MAX_REQUEST_BYTES:
                    return self._answer(413, {"error": "request too large"})
                self._handle(self.rfile.read(length))

            def _handle(self, body):
                match = ROUTE.match(self.path)
                if not match:
                    return self._answer(404, {"error": f"Malformed request: {self.path}"})
                model, version, label, action = match.groups()
                standin.wait()
                try:
                    servable = standin.find(model, int(version) if version else None, label)
                    if action == "/metadata":
                        signatures = get_model_metadata_pb2.SignatureDefMap(signature_def=servable.meta.signature_def)
                        from google.protobuf import json_format

                        payload = json_format.MessageToDict(signatures, preserving_proto_field_name=True)
                        return self._answer(200, {"metadata": {"signature_def": payload}})
                    request = json.loads(body)
                    columns = {}
                    for instance in request["instances"]:
                        for key, value in instance.items():
                            columns.setdefault(key, []).append(
                                base64.b64decode(value["b64"]) if isinstance(value, dict) else value.encode()
                            )
                    protos = {k: tf.make_tensor_proto(v, dtype=tf.string) for k, v in columns.items()}
                    outputs = servable.run(request.get("signature_name", "serving_default"), protos)
                    arrays = {k: tf.make_ndarray(v) for k, v in outputs.items()}
                    rows = [
                        {k: _json_value(a[i]) for k, a in arrays.items()}
                        for i in range(len(next(iter(arrays.values()))))
                    ]
                    self._answer(200, {"predictions": rows})
                except NotFound as e:
                    self._answer(404, {"error": str(e)})
                except (ValueError, KeyError, tf.errors.OpError) as e:
                    self._answer(400, {"error": getattr(e, "message", str(e))})

            def _answer(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.http_thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.http_thread.start()
        self.grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_GrpcServicer(self), self.grpc_server)
        port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        self.grpc_server.start()
        self.rest_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.grpc_url = f"grpc://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc):
        self.delay.set()
        self.http.shutdown()
        self.http.server_close()
        self.grpc_server.stop(grace=None).wait(5)
        for versions in self.servables.values():
            for servable in versions.values():
                servable.session.close()


def _json_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.tolist() if isinstance(value, np.ndarray) else value.item()


class _GrpcServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, standin: StandInServer):
        self.standin = standin

    def _servable(self, spec, context):
        self.standin.wait()
        version = spec.version.value if spec.HasField("version") else None
        try:
            return self.standin.find(spec.name, version, spec.version_label or None)
        except NotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    def Predict(self, request, context):
        servable = self._servable(request.model_spec, context)
        try:
            outputs = servable.run(request.model_spec.signature_name or "serving_default", dict(request.inputs))
        except (ValueError, tf.errors.OpError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", str(e)))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, proto in outputs.items():
            response.outputs[key].CopyFrom(proto)
        return response

    def GetModelMetadata(self, request, context):
        servable = self._servable(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.CopyFrom(request.model_spec)
        response.metadata["signature_def"].Pack(
            get_model_metadata_pb2.SignatureDefMap(signature_def=servable.meta.signature_def)
        )
        return response
