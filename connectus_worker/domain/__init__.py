"""What a message is: kinds, send requests, their validation, deliver_at, expiry.

Pure: imports nothing else of the project but the logging package's masking helpers."""
