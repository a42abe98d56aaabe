"""Dramatiq transport: the Redis broker subclass, its scripts, the queue of each kind."""
