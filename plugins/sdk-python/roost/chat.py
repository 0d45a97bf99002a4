"""Outgoing chat beyond the reply. Sending to a channel alias needs that alias in the
plugin's `grants.channels`; answering a command needs nothing (return the reply)."""

from __future__ import annotations

from typing import Union

from . import _host
from .reply import Reply


def send(channel: str, message: Union[str, Reply]) -> None:
    """Queues `message` for every target of `[channels.CHANNEL]` in the host's persistent
    outbox; returns once it is on disk. An ungranted alias raises `AccessDenied`."""
    _host.current().chat_send(channel, Reply.of(message).parts)
