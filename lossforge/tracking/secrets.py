"""Keeping credentials out of what a run records: params, tags and artifacts are read by anyone with dashboard
access."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping


def redact_uri(uri: str) -> str:
    """Hide credentials embedded in a URI.

    >>> redact_uri("https://alice:s3cret@mlflow.example:5000/x")
    'https://***@mlflow.example:5000/x'
    """
    scheme, separator, rest = uri.partition("://")
    if separator and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|ACCESS_KEY|CREDENTIAL|AUTH", re.IGNORECASE)


def scrub_secrets(text: str, environment: Mapping[str, str] | None = None) -> str:
    """Replace the values of secret-looking environment variables (tokens, passwords, keys) with ``***``.

    A config may interpolate them (``${oc.env:MLFLOW_TRACKING_TOKEN}``); they must not reach params,
    tags or artifacts, which anyone with dashboard access reads.

    >>> scrub_secrets("token=abc123xyz", {"MY_API_TOKEN": "abc123xyz"})
    'token=***'
    """
    environment = os.environ if environment is None else environment
    for name, value in environment.items():
        if len(value) >= 4 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return redact_uri(text) if "://" in text and "@" in text else text
