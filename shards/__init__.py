"""Shards: elements that spread their work over a changing set of members (next release).

Keyed partitioning over 256 partitions already lives in ``datablox.partition``.
"""
