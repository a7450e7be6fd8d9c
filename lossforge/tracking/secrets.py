"""Keeping credentials out of what a run records and prints: params, tags, artifacts, run names and a sweep's
overrides are read by anyone with dashboard access.

Three layers, strongest first:

1. **At the node that produced it.** A config value that an `${oc.env:NAME}` interpolation of a
   secret-looking variable ([is_secret_name][lossforge.tracking.secrets.is_secret_name]) produced, or whose own key
   looks secret (`+db_password=…`), is recorded as `***` — whatever its length
   ([redact_config][lossforge.tracking.secrets.redact_config]). The value's source is known there, so nothing else is
   touched.
2. **Overrides as typed.** A sweep's or run's overrides are recorded as the user typed them
   (`+extra=${oc.env:AWS_SECRET_ACCESS_KEY}`), never resolved, with the values of secret-looking keys
   replaced ([recordable_overrides][lossforge.tracking.secrets.recordable_overrides]). A run is never named after an
   environment variable ([run_name_for][lossforge.tracking.secrets.run_name_for]).
3. **A backstop over any text.** [scrub_secrets][lossforge.tracking.secrets.scrub_secrets] replaces the values of
   secret-looking environment variables ([MIN_SCRUBBED_LENGTH][lossforge.tracking.secrets.MIN_SCRUBBED_LENGTH]
   characters or more: a shorter one replaced as a substring would mangle unrelated text) and credentials in URIs
   ([redact_uri][lossforge.tracking.secrets.redact_uri]).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

SECRET_NAME = re.compile(
    r"PASS|PWD|KEY|TOKEN|SECRET|CREDENTIAL|AUTH|COOKIE|PRIVATE|DATABASE_URL|DSN|CONNECTION_STRING|CONN_STR",
    re.IGNORECASE,
)
"""Variable (and config key) names whose values are secret: passwords (`*PASS*`: `DB_PASS`, `*PASSWORD*`,
`*PASSPHRASE*`; `*PWD*`), keys (`*KEY*`: `API_KEY`, `PRIVATE_KEY`, `SSH_KEY`, `AWS_SECRET_ACCESS_KEY`),
tokens, secrets, credentials, auth, cookies, and connection strings that carry a password (`DATABASE_URL`,
`*DSN*`, `*CONNECTION_STRING*`)."""
NOT_SECRET = frozenset({"PWD", "OLDPWD"})
"""Shell variables that match [SECRET_NAME][lossforge.tracking.secrets.SECRET_NAME] but hold the working directory:
never secret."""
MIN_SCRUBBED_LENGTH = 6
"""Shorter values are redacted at their config node only, never replaced as substrings of other text."""
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """Whether a variable or config key named `name` holds a secret.

    ```pycon
    >>> [is_secret_name(n) for n in ("DB_PASS", "SSH_KEY", "DB_PWD", "SENTRY_DSN", "DATABASE_URL", "PWD", "SEED")]
    [True, True, True, True, True, False, False]

    ```
    """
    return name.upper() not in NOT_SECRET and SECRET_NAME.search(name) is not None


def credentials_in_uri(uri: str) -> bool:
    """Whether `uri` carries a user name or password (`scheme://user:pw@host`).

    ```pycon
    >>> credentials_in_uri("http://alice:pw@mlflow.example:5000"), credentials_in_uri("http://mlflow.example")
    (True, False)
    >>> credentials_in_uri("sqlite:////data/mlflow.db")
    False

    ```
    """
    if "://" not in uri:
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "@" in uri.split("://", 1)[1].split("/", 1)[0]
    return parts.username is not None or parts.password is not None


def redact_uri(uri: str) -> str:
    """Hide credentials embedded in a URI.

    ```pycon
    >>> redact_uri("https://alice:s3cret@mlflow.example:5000/x")
    'https://***@mlflow.example:5000/x'

    ```
    """
    scheme, separator, rest = uri.partition("://")
    if separator and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def _redact_uris(text: str) -> str:
    """Every `scheme://user:pw@host` in `text` as `scheme://***@host`.

    ```pycon
    >>> _redact_uris("open http://u:p@h:5000 or postgresql://x:y@db/z")
    'open http://***@h:5000 or postgresql://***@db/z'

    ```
    """
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)


def scrub_secrets(text: str, environment: Mapping[str, str] | None = None) -> str:
    """Replace the values of secret-looking environment variables (tokens, passwords, keys) with `***`, and
    credentials in URIs.

    The backstop over free text (errors, tags, artifacts): values shorter than
    [MIN_SCRUBBED_LENGTH][lossforge.tracking.secrets.MIN_SCRUBBED_LENGTH] are left to
    [redact_config][lossforge.tracking.secrets.redact_config], which knows which node they came from.

    ```pycon
    >>> scrub_secrets("token=abc123xyz", {"MY_API_TOKEN": "abc123xyz"})
    'token=***'
    >>> scrub_secrets("batch 64 of 640", {"DB_PASS": "64"})  # too short to replace as a substring
    'batch 64 of 640'

    ```
    """
    environment = environment_snapshot() if environment is None else environment
    for name, value in environment.items():
        if len(value) >= MIN_SCRUBBED_LENGTH and is_secret_name(name) and value in text:
            text = text.replace(value, REDACTED)
    if "=" in text:
        text = _redact_assignments(text)
    return _redact_uris(text) if "://" in text and "@" in text else text


_ASSIGNMENT = re.compile(r"((?<![\w.+~-])[+~]*(?:[\w-]+\.)*([\w-]+))=([^\s,'\"\]})]+)")
"""`name=value` in free text (an override, an environment listing), the name's last dotted part in group 2."""


def _redact_assignments(text: str) -> str:
    """`+db_password=hunter2` (any `name=value` whose name looks secret) as `+db_password=***`.

    ```pycon
    >>> _redact_assignments("#0 : loss=focal +db.api_key=k3y seed=1 PWD=/home/me")
    '#0 : loss=focal +db.api_key=*** seed=1 PWD=/home/me'

    ```
    """
    return _ASSIGNMENT.sub(lambda m: f"{m[1]}={REDACTED}" if is_secret_name(m[2]) else m[0], text)


def install_log_scrubber() -> None:
    """Pass every log record of this process through [scrub_secrets][lossforge.tracking.secrets.scrub_secrets] as it is
    made — Hydra's own lines too (its launcher prints each job's overrides, `#0 : +db_password=…`). Idempotent."""
    import logging

    factory = logging.getLogRecordFactory()
    if getattr(factory, "scrubs_secrets", False):
        return

    def scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, as before
            return record
        scrubbed = scrub_secrets(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return record

    scrubbing_factory.scrubs_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbing_factory)


def environment_snapshot() -> dict[str, str]:
    """A copy of this process's environment. Iterating `os.environ` itself raises `KeyError` when another
    thread (MLflow's telemetry) removes a variable meanwhile, so the copy is retried."""
    for _ in range(9):
        try:
            return dict(os.environ)
        except (KeyError, RuntimeError):
            continue
    return dict(os.environ)  # never an empty snapshot: that would scrub nothing


# -- at the node -------------------------------------------------------------------------------------------
_ENV_INTERPOLATION = re.compile(r"\$\{\s*oc\.env\s*:\s*([^,}\s]+)[^}]*\}")
"""`${oc.env:NAME}` or `${oc.env:NAME,default}` — the variable's name in group 1."""


def env_variables(text: str) -> list[str]:
    """The environment variables an (unresolved) config string interpolates.

    ```pycon
    >>> env_variables("${oc.env:AWS_SECRET_ACCESS_KEY}-${oc.env:USER,nobody}")
    ['AWS_SECRET_ACCESS_KEY', 'USER']

    ```
    """
    return _ENV_INTERPOLATION.findall(text)


def _redacted_text(text: str) -> str:
    """`text` (an unresolved config string) with each secret `oc.env` interpolation replaced by `***`; a
    string that reads the environment in a way this does not parse (a nested name) is replaced whole.

    ```pycon
    >>> _redacted_text("postgres://${oc.env:DB_USER}:${oc.env:DB_PASS}@db")
    'postgres://${oc.env:DB_USER}:***@db'

    ```
    """
    redacted = _ENV_INTERPOLATION.sub(lambda match: REDACTED if is_secret_name(match.group(1)) else match[0], text)
    if "oc.env" in redacted and "oc.env" in _ENV_INTERPOLATION.sub("", redacted):
        return REDACTED
    return redacted


def redact_config(config: Any) -> Any:
    """A copy of a config (an OmegaConf node) to record: every value produced by an `oc.env` interpolation of a
    secret-looking variable is `***` — through references too (`b: ${a}`) — and so is every value whose key
    looks secret. Other interpolations resolve as usual. Returns a plain container (dicts and lists), resolved.

    ```pycon
    >>> import os
    >>> from omegaconf import OmegaConf
    >>> os.environ["DOCTEST_DB_PASS"] = "pw"
    >>> cfg = OmegaConf.create({"a": "${oc.env:DOCTEST_DB_PASS}", "b": "${a}", "api_key": "k", "seed": 1})
    >>> redact_config(cfg)
    {'a': '***', 'b': '***', 'api_key': '***', 'seed': 1}

    ```
    """
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(config, resolve=False)
    copy = OmegaConf.create(_redact_raw(raw))
    return OmegaConf.to_container(copy, resolve=True)


def _redact_raw(node: Any, key: str = "") -> Any:
    if isinstance(node, Mapping):
        return {name: _redact_raw(value, str(name)) for name, value in node.items()}
    if isinstance(node, list):
        return [_redact_raw(value, key) for value in node]
    if key and is_secret_name(key) and node is not None:
        return REDACTED
    if isinstance(node, str) and "oc.env" in node:
        return _redacted_text(node)
    return node


def redact_yaml_text(text: str) -> str:
    """A YAML record (Hydra's `config.yaml`, `overrides.yaml`, `hydra.yaml`) as it may be logged: values of
    secret-looking keys and secret `oc.env` interpolations as `***`, every string through the backstop.

    ```pycon
    >>> print(redact_yaml_text("db_password: hunter2\\nseed: 1\\ntask:\\n- +api_key=k3y\\n"), end="")
    db_password: '***'
    seed: 1
    task:
    - +api_key=***

    ```
    """
    import yaml

    try:
        node = yaml.safe_load(text)
    except yaml.YAMLError:
        return scrub_secrets(text)
    return yaml.safe_dump(_redact_strings(_redact_raw(node)), sort_keys=False, allow_unicode=True)


def _redact_strings(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {name: _redact_strings(value) for name, value in node.items()}
    if isinstance(node, list):
        return [_redact_strings(value) for value in node]
    return scrub_secrets(node) if isinstance(node, str) else node


def recordable_overrides(overrides: Iterable[str]) -> list[str]:
    """Command-line overrides as they may be recorded and printed: as typed (interpolations unresolved — read
    them with [raw_strings][lossforge.tracking.secrets.raw_strings]), with the value of a secret-looking key replaced,
    and the backstop applied.

    ```pycon
    >>> recordable_overrides(["loss=focal", "+db_password=hunter2", "+x=${oc.env:API_TOKEN}", "+y=${oc.env:USER}"])
    ['loss=focal', '+db_password=***', '+x=***', '+y=${oc.env:USER}']

    ```
    """
    recorded = []
    for override in overrides:
        key, equals, value = override.partition("=")
        if equals and is_secret_name(key.lstrip("+~").rsplit(".", 1)[-1]):
            value = REDACTED
        elif equals:
            value = _redacted_text(value)
        recorded.append(scrub_secrets(f"{key}{equals}{value}"))
    return recorded


def raw_strings(node: Any) -> list[str]:
    """The strings of a list node as stored, interpolations unresolved: iterating an OmegaConf list resolves each
    element, and Hydra keeps the command line's overrides (`+x=${oc.env:SECRET}`) as such a list.

    ```pycon
    >>> from omegaconf import OmegaConf
    >>> raw_strings(OmegaConf.create({"task": ["+x=${oc.env:NOT_SET_ANYWHERE}"]}).task)
    ['+x=${oc.env:NOT_SET_ANYWHERE}']

    ```
    """
    from omegaconf import OmegaConf

    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=False)
    return [str(item) for item in node or ()]


def run_name_for(config: Any, default: str) -> str:
    """The run's name: `run_name` from the config, unless it reads the environment (`${oc.env:…}`: a run's
    name is shown everywhere and cannot be redacted), else `default`.

    ```pycon
    >>> from omegaconf import OmegaConf
    >>> run_name_for(OmegaConf.create({"run_name": "${oc.env:HOME}"}), "focal-digits-seed0")
    'focal-digits-seed0'
    >>> run_name_for(OmegaConf.create({"run_name": "mine"}), "x")
    'mine'

    ```
    """
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(config, resolve=False)
    name = raw.get("run_name") if isinstance(raw, dict) else None
    if name is None or "oc.env" in str(name):
        return default
    return scrub_secrets(str(config.run_name)) or default
