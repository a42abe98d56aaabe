"""The Connectus HTTP client. It knows nothing of Dramatiq, Redis or settings objects.

- ``client``: :class:`~worker.connectus.client.ConnectusClient`, with ``.v3``,
  ``.v1`` and ``.qr`` (the calls; ``base``: what they share).
- ``transport``: the one boundary where failures become errors, and where the
  answer cap and the request deadline (``deadline``) are kept.
- ``errors``: the error tree; ``classify``: the table that picks a class
  (shown in docs/errors.md).
- ``answers``, ``answers_account``: the answers, as pydantic dataclasses (lax).
- ``enums``: product and country numbers; ``balances``: the campaign preflight.
"""
