"""Development tooling: for the demo, the tests and the benchmarks, never for a producer.

Not installed with the package (see pyproject's package list), and never
imported by the product's modules: ``embedded_redis`` (a local
``redis-server``), ``threaded_server`` (uvicorn in a thread), ``service_server``
(the HTTP service in a thread), ``stack`` (Redis, the sandbox and workers as
processes) and ``demo`` (``connectus demo``). ``connectus demo`` and
``connectus sandbox`` find it through :mod:`cli.devtools_path`.
"""
