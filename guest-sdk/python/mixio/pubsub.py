"""Publish messages to topics (``orders.eu``); delivery is at most once, to the subscribers
present::

    from mixio import pubsub

    pubsub.publish_json("orders", {"id": 7})
"""

import json as _json

from wit_world.imports import pubsub as _wit

from . import errors as _errors

__all__ = ["publish", "publish_json"]


def publish(topic, payload):
    """Publishes ``payload`` (``str`` or ``bytes``) to ``topic``."""
    if isinstance(payload, str):
        payload = payload.encode()
    _errors.call(_wit.publish, topic, bytes(payload))


def publish_json(topic, data):
    """Publishes ``data`` as JSON to ``topic``."""
    publish(topic, _json.dumps(data, separators=(",", ":")))
