"""Redis key names, in one place.

Everything lives under ``{prefix}:`` (``KEY_PREFIX``), Dramatiq's queues under
``{prefix}-dramatiq``, so two deployments can share one Redis; the prefix may carry
one Redis Cluster hash tag (one slot per deployment, docs/scaling.md). A key that
ends with a caller's string (:data:`USER_KEY_KINDS`) is ``{prefix}:<kind>:{tenant}:{key}``:
split from the left it has one reading, so no caller's key reaches another kind's,
another tenant's or a marker of ours (``tests/unit/test_key_namespaces.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectus_worker.config.tenants import DEFAULT_TENANT

#: The kinds of key that end with a caller's string (each ``{prefix}:<ns>:<kind>:``).
USER_KEY_KINDS = ("idem:msg", "idem:campaign", "http-idem:answer", "http-idem:lock")


class _Fixed:
    """A key with no variable part, ``{prefix}:<suffix>``, read as an attribute of :class:`Keys`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __get__(self, keys: Keys, owner: type[Keys]) -> str:
        return f"{keys.prefix}:{self.suffix}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one deployment prefix."""

    prefix: str

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}-dramatiq"

    def job(self, job_id: str) -> str:
        """Hash: the job record and its ledger state."""
        return f"{self.prefix}:job:{job_id}"

    def idempotency(self, key: str, tenant: str = DEFAULT_TENANT) -> str:
        """String: a tenant's idempotency key of a message -> job id."""
        return f"{self.prefix}:idem:msg:{tenant}:{key}"

    def automatic_idempotency(self, job_id: str) -> str:
        """String: the key of a job sent without one (its own id, in a namespace no
        caller's key reaches) -> job id."""
        return f"{self.prefix}:idem:auto:{job_id}"

    def campaign_idempotency(self, key: str, tenant: str = DEFAULT_TENANT) -> str:
        """String: a tenant's idempotency key of a campaign -> campaign id."""
        return f"{self.prefix}:idem:campaign:{tenant}:{key}"

    def http_answer(self, tenant: str, key: str) -> str:
        """String: the stored HTTP answer of a tenant's ``Idempotency-Key`` (JSON)."""
        return f"{self.prefix}:http-idem:answer:{tenant}:{key}"

    def http_lock(self, tenant: str, key: str) -> str:
        """String with a TTL: the in-flight marker of a tenant's ``Idempotency-Key``."""
        return f"{self.prefix}:http-idem:lock:{tenant}:{key}"

    def provider(self, provider_id: str) -> str:
        """String: Connectus's message id -> job id."""
        return f"{self.prefix}:provider:{provider_id}"

    #: Hash: Connectus message id -> "rank|status|at_ms" of a status webhook that came
    #: before the send was recorded (no provider index yet).
    status_pending = _Fixed("status-pending")
    #: Sorted set: those message ids, scored by when the first such status came (ms).
    status_pending_since = _Fixed("status-pending:since")
    #: Sorted set: jobs whose delivery status is polled (e-mail, WhatsApp), scored by when
    #: their next lookup is due (ledger.status_watch).
    status_watch = _Fixed("status-watch")
    #: Sorted set: job id scored by the time (ms) it is due.
    schedule = _Fixed("schedule")
    #: Hash: job id -> encoded Dramatiq message to enqueue when due.
    schedule_messages = _Fixed("schedule:msgs")
    #: Sorted set: dead-lettered job ids scored by when (ms) they died.
    dead_letters = _Fixed("dlq")
    #: Hash: job id -> the message as it can be replayed (OTP content removed).
    dead_letter_messages = _Fixed("dlq:msgs")
    #: Hash: dead-letter member -> reason, for entries without a job record (poison).
    dead_letter_reasons = _Fixed("dlq:reasons")
    #: Sorted set: jobs in ``sending`` scored by when (ms) their lease ends.
    leases = _Fixed("leases")
    #: Hash: job id -> copy of the message being sent (OTP content removed).
    inflight_messages = _Fixed("inflight:msgs")
    #: Sorted set: job ids whose outcome is ambiguous, scored by when (ms).
    unknown = _Fixed("unknown")
    #: Hash: job id -> its message, kept to resend if Connectus has no record.
    unknown_messages = _Fixed("unknown:msgs")
    #: Sorted set: sent jobs Connectus accepted without naming them, scored by when they
    #: were sent (ms); their provider id is looked up (worker.id_lookup).
    id_lookups = _Fixed("idlookup")
    #: Hash: job id -> what the id lookup matches on (JSON: destination, content hash).
    id_lookup_data = _Fixed("idlookup:data")
    #: Sorted set: undecidable jobs waiting for an operator, scored by when (ms).
    review = _Fixed("review")
    #: Hash: job id -> its message, for ``connectus review resend``.
    review_messages = _Fixed("review:msgs")
    #: Set: normalised phone numbers opted out of marketing (STOP).
    opt_out = _Fixed("optout")

    # -- campaigns (campaign.store) ---------------------------------------

    def campaign(self, campaign_id: str) -> str:
        """Hash: a campaign's definition, state and progress."""
        return f"{self.prefix}:campaign:{campaign_id}"

    def campaign_counts(self, campaign_id: str) -> str:
        """Hash: state -> number of the campaign's released jobs in it."""
        return f"{self.prefix}:campaign:{campaign_id}:counts"

    def campaign_chunk(self, campaign_id: str, chunk: int) -> str:
        """String: one chunk of the stored recipient list (JSON rows)."""
        return f"{self.prefix}:campaign:{campaign_id}:chunk:{chunk}"

    def campaign_parked(self, campaign_id: str) -> str:
        """Hash: job id (or ``chunk:<n>``) -> message held while the campaign is paused."""
        return f"{self.prefix}:campaign:{campaign_id}:parked"

    def campaign_deliveries(self, campaign_id: str) -> str:
        """Hash: chunk -> the Connectus ``id_delivery`` its v1 bulk created."""
        return f"{self.prefix}:campaign:{campaign_id}:deliveries"

    def campaign_made(self, campaign_id: str) -> str:
        """Bitmap: bit n set once the job records of v1 bulk chunk n were made
        (its first claim, see ``ledger/lua/claim_bulk.lua``)."""
        return f"{self.prefix}:campaign:{campaign_id}:made"

    def campaign_history(self, campaign_id: str) -> str:
        """Hash: epoch minute -> ``sent,failed,unknown`` of the campaign's jobs that
        finished so in it (its chart; ledger/lua/lib_history.lua), as long as its record."""
        return f"{self.prefix}:campaign:{campaign_id}:history"

    def campaign_pump(self, campaign_id: str) -> str:
        """String with a short TTL: which process is releasing the campaign's chunks."""
        return f"{self.prefix}:campaign:{campaign_id}:pump"

    #: Sorted set: campaign ids scored by creation time (ms).
    campaigns = _Fixed("campaigns")
    #: Set: campaigns not yet finished or cancelled (what the pump looks at).
    active_campaigns = _Fixed("campaigns:active")

    # -- search and history (see ledger.lookup, ledger.history, docs/search.md) ------

    def find_recipient(self, digest: str) -> str:
        """Sorted set: job ids sent to one recipient, scored by creation (ms); the
        recipient is named by its keyed digest (:func:`domain.hashing.recipient_digest`)."""
        return f"{self.prefix}:find:dst:{digest}"

    def find_idempotency(self, key: str) -> str:
        """Sorted set: job ids of any tenant sent with the idempotency key ``key``
        (``find:<kind>:`` ends with the caller's string: it reaches no other key)."""
        return f"{self.prefix}:find:idem:{key}"

    def find_correlation(self, correlation_id: str) -> str:
        """Sorted set: job ids carrying ``correlation_id``, scored by creation (ms)."""
        return f"{self.prefix}:find:corr:{correlation_id}"

    def history(self, hour_s: int) -> str:
        """Hash: minute of the hour starting at ``hour_s`` (epoch s) -> ``sent,failed,unknown``
        jobs that finished so in it; see ledger/lua/lib_history.lua."""
        return f"{self.prefix}:history:{hour_s}"

    def queue(self, queue_name: str) -> str:
        """Dramatiq's list of message ids for a queue."""
        return f"{self.dramatiq_namespace}:{queue_name}"

    def queue_messages(self, queue_name: str) -> str:
        """Dramatiq's hash of message id -> message data for a queue."""
        return f"{self.dramatiq_namespace}:{queue_name}.msgs"
