"""The Connectus HTTP client. It knows nothing of Dramatiq, Redis or settings objects.

Modules, one concept each:

- ``client``: :class:`~worker.connectus.client.ConnectusClient`, ``.v3``,
  ``.v1`` and ``.qr`` over one ``httpx.Client`` per calling thread.
- ``v3`` (``v3_messages``, ``v3_account``), ``v1``, ``qr``: the calls.
- ``transport``: the boundary; the only place failures become errors, and
  where the answer cap and the request deadline are kept.
- ``errors``: the error tree; ``classify``: the table that picks a class
  (rendered in docs/errors.md); ``retry_after``: the Retry-After header.
- ``answers``, ``answers_account``: the answers, as pydantic dataclasses (lax).
- ``enums``: product and country numbers; ``testing``: MockTransport helpers.
"""
