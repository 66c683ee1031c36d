"""The smallest Python handler, like guests/hello: greets ``?name=`` (or the world) with the
configured ``greeting`` (default "hello"). With ``?ms=N`` it first sleeps N milliseconds in the
host (suspending only this guest), for the density benchmark (bench/benches/density.rs)."""

from mixio import IncomingHandler  # noqa: F401 - the export componentize-py looks for
from mixio import config, handler, time


@handler
def hello(request):
    query = request.GET
    if "ms" in query:
        time.sleep(int(query["ms"]) / 1000)
    greeting = config.get("greeting", "hello")
    return f"{greeting}, {query.get('name', 'world')}!\n"
