"""A local, in-memory Connectus for tests, the demo, docker-compose and benchmarks.

One ASGI app serves v3 under ``/api_v3``, v1 under ``/api_v1``, the WhatsApp QR API
at the root, and an admin API under ``/_sandbox`` that needs **no auth**:
``GET /_sandbox/health``, ``GET /_sandbox/stats``, ``GET /_sandbox/ledger?since=``,
``GET /_sandbox/ledger/summary``, ``GET|PUT /_sandbox/faults``, ``PUT /_sandbox/account``,
``PUT /_sandbox/balance``, ``POST /_sandbox/incoming_sms``, ``POST /_sandbox/email_event``,
``GET /_sandbox/s/{code}``, ``POST /_sandbox/reset`` (shapes in :mod:`sandbox.admin`
and docs/sandbox.md).

Modules: ``config`` (frozen settings), ``charging`` (costs, countries, balances),
``store`` (columnar messages and ledger), ``directory`` (subclients, deliveries, short
links), ``state`` (the in-memory platform and its scheduler), ``faults``, ``webhooks``,
``web`` (auth, params, the route wrapper), ``records`` (JSON shapes), ``api_v3_sms``,
``api_v3_messaging``, ``api_v3_account``, ``api_v1``, ``api_qr``, ``admin``, ``app``
(``build_app``), ``server`` (``run``, ``SandboxServer``), ``postman`` (collection walker).
"""
