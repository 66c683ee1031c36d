"""Configuration variables the host gives this component (the manifest's ``config``)."""

from wit_world.imports import config as _wit

from .errors import MissingConfig

__all__ = ["get", "require"]


def get(key, default=None):
    """The value of variable ``key``, or ``default`` if this component has none."""
    value = _wit.get(key)
    return default if value is None else value


def require(key):
    """The value of variable ``key``; :class:`mixio.MissingConfig` if it is not set."""
    value = _wit.get(key)
    if value is None:
        raise MissingConfig(key)
    return value
