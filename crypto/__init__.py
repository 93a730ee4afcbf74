"""Confide's cryptographic core: pure, sans-I/O.

Primitives, HPKE (RFC 9180), MLS (RFC 9420) and the transparency log's Merkle
tree and signed notes. Nothing here touches the network, the filesystem, the
clock or hidden randomness: time is a parameter and randomness comes from an
injectable :class:`crypto.rng.Rng`.
"""
