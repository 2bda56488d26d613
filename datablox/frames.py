"""The batch frame header carried in front of every pushed payload.

A pushed batch is a two-frame ZeroMQ message ``[header, payload]``. The header
is 24 bytes, network order::

    version u8 | kind u8 | codec u8 | flags u8 | sender u32 | connection u32 | seq u64 | records u32

``sender`` is the sending element's id and ``connection`` the connection id,
both from the compiled topology; ``seq`` counts batches per connection from 0,
so a receiver can detect loss or duplicates; ``records`` is the number of records.
An end-of-stream batch (kind EOS) carries the total records sent in ``records``
and the next unused ``seq``. A checkpoint barrier (kind BARRIER) carries the
checkpoint id in ``records`` and the next unused ``seq``: every batch before it
belongs to that checkpoint, every batch after it to the next. A move marker
(kind MARKER) carries a partition move's id in ``records``: the sender has sent
the receiver everything of the moving partitions it will ever send it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from datablox.errors import ProtocolError

VERSION = 1
DATA = 0
EOS = 1
BARRIER = 2
MARKER = 3

_HEADER = struct.Struct("!BBBBIIQI")
HEADER_SIZE = _HEADER.size


class Header(NamedTuple):
    """A decoded batch header."""

    kind: int
    codec: int
    sender: int
    connection: int
    seq: int
    records: int


def pack_header(
    kind: int, codec: int, sender: int, connection: int, seq: int, records: int
) -> bytes:
    """Encode a header into its 24 wire bytes."""
    return _HEADER.pack(VERSION, kind, codec, 0, sender, connection, seq, records)


def unpack_header(data: bytes) -> Header:
    """Decode 24 wire bytes; raise ProtocolError when they are not a datablox header."""
    if len(data) != HEADER_SIZE:
        raise ProtocolError(f"batch header has {len(data)} bytes, expected {HEADER_SIZE}")
    version, kind, codec, _flags, sender, connection, seq, records = _HEADER.unpack(data)
    if version != VERSION:
        raise ProtocolError(f"batch header version {version}, this datablox speaks {VERSION}")
    if kind not in (DATA, EOS, BARRIER, MARKER):
        raise ProtocolError(f"batch header has unknown kind {kind}")
    return Header(kind, codec, sender, connection, seq, records)
