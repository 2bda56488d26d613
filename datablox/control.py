"""Control messages: dicts with an ``op`` field, encoded as JSON, dispatched to handlers.

Used between master, care-takers and element processes. Every message is a
single ZeroMQ frame after any routing identity frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from datablox.errors import ProtocolError

Message = dict[str, Any]
Handler = Callable[..., Any]


def encode(msg: Message) -> bytes:
    """Encode a control message."""
    if "op" not in msg:
        raise ProtocolError(f"control message without 'op': {msg!r}")
    return orjson.dumps(msg, option=orjson.OPT_NON_STR_KEYS)


def decode(data: bytes) -> Message:
    """Decode a control message; raise ProtocolError when it is not one."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"control message is not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise ProtocolError(f"control message without a string 'op': {msg!r}")
    return msg


class Dispatcher:
    """Calls the handler registered for a message's ``op``."""

    def __init__(self, handlers: Mapping[str, Handler], owner: str) -> None:
        self._handlers = dict(handlers)
        self._owner = owner

    def dispatch(self, msg: Message, *args: Any) -> Any:
        handler = self._handlers.get(msg["op"])
        if handler is None:
            raise ProtocolError(
                f"{self._owner} got unknown control op '{msg['op']}'",
                f"known ops: {', '.join(sorted(self._handlers))}",
            )
        return handler(msg, *args)
