"""The Connectus HTTP client. It knows nothing of Dramatiq, Redis or settings objects.

- ``client``: :class:`~worker.connectus.client.ConnectusClient`, the one boundary
  where failures become errors, the answer cap and the request deadline
  (``deadline``) are kept; its ``.v3``, ``.v1`` and ``.qr`` hold the calls.
- ``errors``: the error tree; ``classify``: the table that picks a class.
- ``answers``, ``answers_account``: the answers, as pydantic dataclasses (lax).
- ``enums``: product and country numbers; ``balances``: the campaign preflight.
"""
