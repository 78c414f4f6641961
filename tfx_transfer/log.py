"""The toolkit's logger. Library code logs; only the CLI decides where messages go.

>>> from tfx_transfer.log import logger
>>> logger.name
'tfx_transfer'
"""

import logging
import sys

logger = logging.getLogger("tfx_transfer")


def install_console_handler(debug: bool = False) -> None:
    """Prints the toolkit's INFO messages (DEBUG with `debug`) to stderr as `[tfx-transfer] ...`."""
    if any(getattr(h, "_tfx_transfer", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[tfx-transfer] %(message)s"))
    handler._tfx_transfer = True
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
