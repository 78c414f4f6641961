"""What can go wrong talking to TF Serving, each error naming the server, model and version.

>>> error = ModelNotFoundError("http://localhost:8501", "pets", "version 7", "Servable not found")
>>> str(error)
"TF Serving at http://localhost:8501, model 'pets' version 7: Servable not found"
>>> isinstance(error, ServingError) and isinstance(error, OSError)
True
"""


class ServingError(OSError):
    """A request to TF Serving failed; `server`, `model` and `version` say which one."""

    def __init__(self, server: str, model: str, version: str, reason: str):
        super().__init__(f"TF Serving at {server}, model {model!r} {version}: {reason}")
        self.server, self.model, self.version, self.reason = server, model, version, reason


class ServerUnavailableError(ServingError):
    """Nothing answers at the server's address (down, wrong host or port)."""


class ServingTimeoutError(ServingError, TimeoutError):
    """The server did not answer within the client's timeout."""


class ModelNotFoundError(ServingError):
    """The server does not serve this model, version or version label."""


class PredictionRequestError(ServingError):
    """The server answered with an error (for example an input it cannot decode); `status` is its code."""

    def __init__(self, server: str, model: str, version: str, reason: str, status):
        super().__init__(server, model, version, reason)
        self.status = status
