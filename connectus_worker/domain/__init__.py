"""What a message is: kinds, send requests, their validation, deliver_at, expiry.

Imports of the project only the settings, the Redis reply helper and the masking helpers."""
