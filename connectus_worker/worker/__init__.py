"""What runs in worker pods: Dramatiq actors, the send pipeline, the supervisor."""
