"""Push messages to websocket clients connected to the host at ``GET /ws/{channel}``::

    from mixio import ws

    ws.send_json("ada", {"mins": 12})

A channel without clients is not an error; delivery is at most once.
"""

import json as _json

from wit_world.imports import websocket as _wit

from . import errors as _errors

__all__ = ["send", "send_json"]


def send(channel, text):
    """Sends ``text`` to the clients of ``channel``."""
    _errors.call(_wit.send, channel, text)


def send_json(channel, data):
    """Sends ``data`` as JSON to the clients of ``channel``."""
    send(channel, _json.dumps(data, separators=(",", ":")))
