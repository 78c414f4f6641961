"""Serving an export with TF Serving: its configuration files and a REST/gRPC client.

>>> from tfx_transfer.serving import BatchingOptions
>>> BatchingOptions(max_batch_size=8).max_batch_size
8
"""

from tfx_transfer.serving.config import (
    BatchingOptions,
    docker_command,
    find_models,
    model_server_config,
    write_serving_config,
)

__all__ = ["BatchingOptions", "docker_command", "find_models", "model_server_config", "write_serving_config"]
