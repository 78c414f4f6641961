"""Serving an export with TF Serving: its configuration files and a REST/gRPC client.

>>> from tfx_transfer.serving import BatchingOptions, Client
>>> BatchingOptions(max_batch_size=8).max_batch_size
8
>>> Client("http://localhost:8501", "pets", label="canary").version_text
"label 'canary'"
"""

from tfx_transfer.serving.client import Client, Prediction
from tfx_transfer.serving.config import (
    BatchingOptions,
    docker_command,
    find_models,
    model_server_config,
    write_serving_config,
)
from tfx_transfer.serving.errors import (
    ModelNotFoundError,
    PredictionRequestError,
    ServerUnavailableError,
    ServingError,
    ServingTimeoutError,
)

__all__ = [
    "BatchingOptions",
    "Client",
    "ModelNotFoundError",
    "Prediction",
    "PredictionRequestError",
    "ServerUnavailableError",
    "ServingError",
    "ServingTimeoutError",
    "docker_command",
    "find_models",
    "model_server_config",
    "write_serving_config",
]
