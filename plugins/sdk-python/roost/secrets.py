"""Secrets the plugin's grants name (`[plugins.NAME.grants] secrets = ["riot_api_key"]`):
API keys and passwords kept out of `roost.toml`. The host reads each from the variable
`ROOST_SECRET_<NAME>` in its environment at start, or else from the file
`<data_dir>/secrets/<name>` (mode 0600), and never logs, stores or shows a value.

    key = secrets.get("riot_api_key")

Once the plugin has a value, where it goes is up to the plugin: do not reply with it, log
it, keep it in `kv` or pass it to a job unless that is the point.
"""

from __future__ import annotations

from . import _host


def get(name: str) -> str:
    """The value of secret `name`. Raises `AccessDenied` when the grants do not name it and
    `NotFound` when the host has no value for it (the message says what to set)."""
    return _host.current().secrets_get(name)
