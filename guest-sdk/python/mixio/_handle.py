"""The base of the SDK's wrappers around a host resource (a store, a connection)."""


class Handle:
    """Owns a host resource handle: ``close()``, or ``with``, releases it before the request
    ends (which releases it anyway)."""

    def __init__(self, inner):
        self._inner = inner

    def close(self):
        """Releases the handle; closing it again does nothing."""
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
