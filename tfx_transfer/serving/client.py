"""A TF Serving client for exported models: raw inputs in, labels and probabilities out, REST or gRPC.

`http://` and `https://` servers are spoken to over REST (`:predict`, bytes as
`{"b64": ...}`), `grpc://` servers over gRPC (`PredictionService`). The input
name (`image_bytes`, `text`, `audio_wav`) is read from the model's signature
unless given.

Example:

```python
client = Client("http://localhost:8501", "pets", label="stable")
for prediction in client.predict([open("cat.jpg", "rb").read()]):
    print(prediction.label, prediction.probability)
```
"""

import base64
import dataclasses
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from tfx_transfer.serving.errors import (
    ModelNotFoundError,
    PredictionRequestError,
    ServerUnavailableError,
    ServingTimeoutError,
)

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # a file `predict --server` sends; TF Serving's gRPC default limit is 2 GB
SCHEMES = ("http", "https", "grpc")


@dataclasses.dataclass
class Prediction:
    """One input's answer: the predicted label and class id, and every class's probability."""

    label: str
    class_id: int
    probabilities: list[float]

    @property
    def probability(self) -> float:
        return self.probabilities[self.class_id]


class Client:
    """Predictions from one model served by TF Serving.

    `version` (an integer) or `label` (`stable`, `canary`) picks the version;
    neither means the newest the server has loaded. `timeout` (seconds) bounds
    every request. Errors are `ServingError` subclasses naming the server,
    model and version.
    """

    def __init__(
        self,
        server: str,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = "serving_default",
        timeout: float = 10.0,
        input_key: str | None = None,
    ):
        parsed = urllib.parse.urlparse(server)
        if parsed.scheme not in SCHEMES or not parsed.netloc:
            raise ValueError(
                f"Server {server!r} must be a URL such as http://localhost:8501 (REST) or grpc://localhost:8500 (gRPC)."
            )
        if version is not None and label is not None:
            raise ValueError(f"Give a version ({version}) or a label ({label!r}), not both.")
        if not 0 < timeout <= 3600:
            raise ValueError(f"timeout must be in (0, 3600] seconds, received {timeout}.")
        self.server = server.rstrip("/")
        self.model, self.version, self.label = model, version, label
        self.signature, self.timeout = signature, float(timeout)
        self._transport = (_Grpc if parsed.scheme == "grpc" else _Rest)(self, parsed.netloc)
        self._input_key = input_key

    @property
    def version_text(self) -> str:
        if self.version is not None:
            return f"version {self.version}"
        return f"label {self.label!r}" if self.label else "latest version"

    @property
    def input_key(self) -> str:
        """The signature's one input name, read from the server's model metadata once."""
        if self._input_key is None:
            inputs = self._transport.signature_inputs()
            if len(inputs) != 1:
                raise PredictionRequestError(
                    self.server, self.model, self.version_text,
                    f"signature {self.signature!r} has inputs {sorted(inputs)}; pass input_key to choose one", None,
                )
            (self._input_key,) = inputs
        return self._input_key

    def predict(self, inputs) -> list[Prediction]:
        """One `Prediction` per input: `bytes` (image or WAV files) or `str` (text)."""
        inputs = list(inputs)
        if not inputs:
            return []
        outputs = self._transport.predict(self.input_key, inputs)
        return [
            Prediction(label=str(label), class_id=int(class_id), probabilities=[float(p) for p in probabilities])
            for label, class_id, probabilities in zip(outputs["label"], outputs["class_id"], outputs["probabilities"])
        ]

    def close(self) -> None:
        """Closes the gRPC channel (REST keeps no connection open)."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def error(self, kind, reason, *args):
        return kind(self.server, self.model, self.version_text, reason, *args)


class _Rest:
    """TF Serving's REST API: `/v1/models/<model>[/versions/<v>|/labels/<l>]:predict` and `/metadata`."""

    def __init__(self, client: Client, netloc: str):
        self.client = client
        path = f"/v1/models/{urllib.parse.quote(client.model, safe='')}"
        if client.version is not None:
            path += f"/versions/{int(client.version)}"
        elif client.label:
            path += f"/labels/{urllib.parse.quote(client.label, safe='')}"
        self.base = client.server + path

    def close(self) -> None:
        pass

    def signature_inputs(self) -> list[str]:
        metadata = self._request(self.base + "/metadata")
        signatures = metadata.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
        if self.client.signature not in signatures:
            raise self.client.error(
                PredictionRequestError, f"has no signature {self.client.signature!r} (it has {sorted(signatures)})", None
            )
        return list(signatures[self.client.signature].get("inputs", {}))

    def predict(self, input_key: str, inputs) -> dict:
        instances = [{input_key: {"b64": base64.b64encode(x).decode()} if isinstance(x, bytes) else x} for x in inputs]
        body = json.dumps({"signature_name": self.client.signature, "instances": instances}).encode()
        answer = self._request(self.base + ":predict", body)
        rows = answer.get("predictions")
        if not isinstance(rows, list) or len(rows) != len(inputs):
            raise self.client.error(PredictionRequestError, f"answered without one prediction per input: {str(answer)[:200]}", 200)
        return {key: [row[key] for row in rows] for key in ("label", "class_id", "probabilities")}

    def _request(self, url: str, body: bytes | None = None) -> dict:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.client.timeout) as response:
                payload = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            raise self._http_error(e) from None
        except (TimeoutError, socket.timeout):
            raise self.client.error(ServingTimeoutError, f"no answer within {self.client.timeout:g} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise self.client.error(ServingTimeoutError, f"no answer within {self.client.timeout:g} s") from None
            raise self.client.error(ServerUnavailableError, f"cannot connect ({e.reason}); is the server running?") from None
        if len(payload) > MAX_RESPONSE_BYTES:
            raise self.client.error(PredictionRequestError, f"answer larger than {MAX_RESPONSE_BYTES} bytes", 200)
        try:
            return json.loads(payload)
        except ValueError:
            raise self.client.error(PredictionRequestError, f"answered with non-JSON: {payload[:200]!r}", 200) from None

    def _http_error(self, error: urllib.error.HTTPError):
        try:
            reason = json.loads(error.read(65536)).get("error", "")
        except ValueError:
            reason = ""
        reason = reason or error.reason
        if error.code == 404 or "version label" in reason:
            return self.client.error(ModelNotFoundError, f"not served (HTTP {error.code}: {reason})")
        return self.client.error(PredictionRequestError, f"HTTP {error.code}: {reason}", error.code)


class _Grpc:
    """TF Serving's gRPC `PredictionService`: `Predict` and `GetModelMetadata`."""

    def __init__(self, client: Client, netloc: str):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.client, self.grpc = client, grpc
        options = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)]
        self.channel = grpc.insecure_channel(netloc, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _model_spec(self, spec):
        spec.name = self.client.model
        spec.signature_name = self.client.signature
        if self.client.version is not None:
            spec.version.value = int(self.client.version)
        elif self.client.label:
            spec.version_label = self.client.label

    def signature_inputs(self) -> list[str]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec)
        response = self._call(self.stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        if self.client.signature not in signatures.signature_def:
            raise self.client.error(
                PredictionRequestError,
                f"has no signature {self.client.signature!r} (it has {sorted(signatures.signature_def)})", None,
            )
        return list(signatures.signature_def[self.client.signature].inputs)

    def predict(self, input_key: str, inputs) -> dict:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        raw = [x if isinstance(x, bytes) else str(x).encode("utf-8") for x in inputs]
        request.inputs[input_key].CopyFrom(tf.make_tensor_proto(raw, dtype=tf.string))
        response = self._call(self.stub.Predict, request)
        outputs = {key: tf.make_ndarray(response.outputs[key]) for key in ("label", "class_id", "probabilities")}
        outputs["label"] = [label.decode("utf-8", errors="replace") for label in outputs["label"]]
        return outputs

    def _call(self, method, request):
        try:
            return method(request, timeout=self.client.timeout)
        except self.grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            status = self.grpc.StatusCode
            if code == status.DEADLINE_EXCEEDED:
                raise self.client.error(ServingTimeoutError, f"no answer within {self.client.timeout:g} s") from None
            if code == status.UNAVAILABLE:
                raise self.client.error(ServerUnavailableError, f"cannot connect ({details}); is the server running?") from None
            if code == status.NOT_FOUND or "version label" in details:
                raise self.client.error(ModelNotFoundError, f"not served ({code.name}: {details})") from None
            raise self.client.error(PredictionRequestError, f"{code.name}: {details}", code.name) from None
