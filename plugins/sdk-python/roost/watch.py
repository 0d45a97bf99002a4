"""Watching directories for changes. Needs `watch_roots` in the plugin's grants: every
subscribed directory must lie inside one (after symlinks and `..` are resolved; relative
paths are resolved against the config file's directory, like the grant).

    class Tests(Plugin):
        def init(self, config):
            self.sub = watch.subscribe(["../api"], ignore=["*.swp", "build/"])

        def on_files_changed(self, batch):
            if batch.subscription == self.sub:
                for change in batch.changes: ...   # change.root, .path, .kind

The host drops what Git ignores, what `.ignore` files name, `.git` itself and the globs
given here; it waits for a quiet period (`debounce`) or the maximum wait and then delivers
the net change of each path as one batch to `Plugin.on_files_changed`. Subscriptions die
with the instance: `init` sets them up again after a reload or crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from . import _host

#: How a path changed within one batch (its net change).
KINDS = ("created", "modified", "removed")


@dataclass(frozen=True)
class Change:
    """One changed path."""

    root: str
    """The subscribed directory it is under, as given to `subscribe`."""
    path: str
    """Relative to `root`, with `/` between components."""
    kind: str
    """"created", "modified" or "removed"."""


@dataclass
class FilesChanged:
    """One debounced batch of changes, given to `Plugin.on_files_changed`."""

    subscription: int
    """The id `subscribe` returned."""
    changes: list[Change] = field(default_factory=list)
    """The changed paths, sorted by root then path."""
    overflow: bool = False
    """Changes were lost (the kernel's queue overflowed, or the batch was too large): act as
    if anything under the subscription changed."""


def _millis(seconds: Optional[float], what: str) -> int:
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError(f"watch: {what} cannot be negative")
    return min(int(round(seconds * 1000)), 2**32 - 1)


def subscribe(paths: Iterable[str], ignore: Iterable[str] = (), debounce: float = 0.05,
              max_wait: Optional[float] = 2.0) -> int:
    """Starts watching the directories `paths`; returns the subscription id every batch
    carries. `ignore` holds extra gitignore-style globs ("*.swp", "build/", "!keep.py")
    anchored at each path. A batch goes out once no change came for `debounce` seconds, or
    `max_wait` seconds after its first change (None: wait for quiet however long it takes).
    A directory outside the grant raises `AccessDenied`, a missing one `NotFound`, a file
    or a bad glob `InvalidArgument`."""
    if isinstance(paths, str):
        paths = [paths]
    if isinstance(ignore, str):
        ignore = [ignore]
    wait = 0 if max_wait is None else max(1, _millis(max_wait, "max_wait"))
    return _host.current().watch_subscribe(list(paths), list(ignore),
                                           _millis(debounce, "debounce"), wait)


def unsubscribe(subscription: int) -> None:
    """Stops a subscription; an unknown id raises `NotFound`."""
    _host.current().watch_unsubscribe(subscription)
