"""Typed, validated connector configuration built from the parameters declared in ``manifest.json``.

The manifest is the single declaration of every parameter (name, type, default, range, choices, secret flag):
the host UI, the README table and this module all read it, so they cannot drift apart. ``Config`` is built
once per run and fails fast with a ``ConfigError`` that names the offending parameter and says what is
expected.

Strings are accepted for numbers, booleans and lists (``"30"``, ``"true"``, ``"audit,user_management"``) on
purpose: hosts often store every form field as a string (Splunk UCC, environment variables, key=value files),
and refusing them would push each host to write its own converter. The string must still parse exactly;
``"30 minutes"`` or ``"maybe"`` are errors.

``auth_method`` chooses the credentials: ``oauth2`` (``client_key``, ``client_secret``, ``token_url``) or
``api_keys_v1`` (``app_id``, ``app_key``, ``access_key``, ``secret_key``). The manifest marks each credential with
``only_when``: the parameters of the other method are not read at all (not even from the environment), so a
configuration never holds a secret it does not use; those fields hold their default (``""``, or ``NOT_SET`` for a
secret). ``required_when`` makes a parameter with a default required under a condition (``api_base_url`` with
``api_keys_v1``: the default is an API 2.0 host).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from connector.api.auth_v1 import check_api_keys
from connector.api.transport import redact_url, validate_proxy_url
from connector.api.urls import check_token_host, default_token_url, validate_base_url
from connector.errors import ConfigError
from connector.resources import manifest_text
from connector.secret import NOT_SET, WITHHELD, Secret

__all__ = [
    "APP_KEY_ENV",
    "CLIENT_SECRET_ENV",
    "OUTPUTS_SECTION",
    "SECRET_KEY_ENV",
    "Config",
    "ParameterSpec",
    "output_sections",
    "output_settings",
    "parameter_specs",
]

CLIENT_SECRET_ENV = "MIMECAST_CLIENT_SECRET"
"""Environment variable read for ``client_secret`` when the parameter is absent (keeps it out of files)."""
APP_KEY_ENV = "MIMECAST_APP_KEY"
"""Environment variable read for ``app_key`` (``auth_method`` ``api_keys_v1``) when the parameter is absent."""
SECRET_KEY_ENV = "MIMECAST_SECRET_KEY"
"""Environment variable read for ``secret_key`` (``auth_method`` ``api_keys_v1``) when the parameter is absent."""

# ASCII digits only: int() and float() also read Arabic-Indic or full-width digits, which no form field means.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_MAX_SHOWN = 60


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()  # keyword arguments only from Python 3.12
    short.maxlevel = 3
    short.maxdict = short.maxlist = short.maxtuple = short.maxset = short.maxfrozenset = 4
    short.maxstring = _MAX_SHOWN
    short.maxother = 40
    return short


_SHORT_REPR = _short_repr()
# Types for which a blank string can only mean "not set" (a form field left empty): treat it like None.
_BLANK_IS_ABSENT = frozenset({"secret", "integer", "number", "boolean", "enum"})


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter as declared in ``manifest.json`` (see ``schemas/manifest.schema.json``)."""

    name: str
    label: str
    type: str
    required: bool
    default: object
    description: str
    secret: bool
    advanced: bool = False
    env: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    min_items: int = 0
    min_length: int = 0
    only_when: tuple[str, str] | None = None
    required_when: tuple[str, str] | None = None

    def applies(self, values: Mapping[str, object]) -> bool:
        """Whether the parameter is read, given the values of the parameters declared before it."""
        return self.only_when is None or values.get(self.only_when[0]) == self.only_when[1]

    def required_by(self, values: Mapping[str, object]) -> bool:
        """Whether the parameter must be given, given the values of the parameters declared before it."""
        condition = self.required_when
        return self.required or (condition is not None and values.get(condition[0]) == condition[1])


def _condition(raw: object) -> tuple[str, str] | None:
    """A manifest ``only_when``/``required_when`` object (one name and value; the schema checks it) as a pair."""
    if not isinstance(raw, dict):
        return None
    ((name, value),) = raw.items()
    return str(name), str(value)


@functools.cache
def parameter_specs() -> Mapping[str, ParameterSpec]:
    """The manifest's parameter declarations, in manifest order, parsed once per process.

    Returns:
        A read-only mapping from parameter name to its ``ParameterSpec``.
    """
    manifest = json.loads(manifest_text())
    specs: dict[str, ParameterSpec] = {}
    for raw in manifest["parameters"]:
        specs[raw["name"]] = ParameterSpec(
            name=raw["name"],
            label=raw["label"],
            type=raw["type"],
            required=raw["required"],
            default=raw["default"],
            description=raw["description"],
            secret=raw["secret"],
            advanced=raw.get("advanced", False),
            env=raw.get("env"),
            minimum=raw.get("min"),
            maximum=raw.get("max"),
            choices=tuple(raw.get("choices", ())),
            min_items=raw.get("min_items", 0),
            min_length=raw.get("min_length", 0),
            only_when=_condition(raw.get("only_when")),
            required_when=_condition(raw.get("required_when")),
        )
    return MappingProxyType(specs)


@dataclass(frozen=True)
class Config:
    """The validated parameters of one connector run.

    Build it with ``from_parameters`` or ``from_file``; both apply the manifest defaults. ``repr`` and
    ``redacted()`` never show the client secret (``Secret`` masks it).

    Attributes:
        auth_method: ``oauth2`` (an API 2.0 application) or ``api_keys_v1`` (API 1.0 keys).
        api_base_url: Mimecast API base URL, without a trailing slash; an API 1.0 host with ``api_keys_v1``.
        token_url: OAuth 2.0 token endpoint, already resolved to ``api_base_url + "/oauth/token"`` when empty;
            ``""`` with ``api_keys_v1`` (no token endpoint).
        allow_external_token_url: ``token_url`` may be on a host that is neither Mimecast's nor the API's.
        client_key: Client ID of the API 2.0 application (``""`` with ``api_keys_v1``).
        client_secret: Client secret of the API 2.0 application (``NOT_SET`` with ``api_keys_v1``).
        app_id: Application ID of the API 1.0 application (``""`` with ``oauth2``).
        app_key: Application Key of the API 1.0 application (``NOT_SET`` with ``oauth2``).
        access_key: Access Key of the API 1.0 binding (``""`` with ``oauth2``).
        secret_key: Secret Key of the API 1.0 binding, base64 (``NOT_SET`` with ``oauth2``).
        event_types: What to collect: a non-empty subset of the manifest's event types, manifest order.
        initial_lookback_hours: First-run audit lookback.
        overlap_minutes: Trailing audit window re-read every run (Mimecast index lag).
        page_size: Records per API page.
        max_pages_per_call: Page cap of one paginated call.
        emit_other_audit_types: Emit unclassified audit types as OCSF Base Event.
        audit_categories: Audit categories to request; empty means all.
        concurrency: Parallel group-member reads.
        inventory_interval_minutes: Minimum minutes between two directory pulls; 0 pulls every run.
        request_timeout_seconds: Timeout of one HTTP request.
        proxy_url: HTTP(S) proxy for every request; empty: the proxy environment variables. Its credentials are
            masked in ``repr`` and ``redacted()``.
        log_level: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
        lag_warning_minutes: Index lag that triggers a warning; 0 disables it.
        raw_data_max_bytes: Cap on the original record copied into OCSF ``raw_data`` (compact JSON, UTF-8
            bytes); 0 leaves ``raw_data`` out (``connector.raw_data``).
        siem_log_types: The SIEM log types the ``siem`` event type collects (manifest order).
        siem_mode: ``batch`` (files, 7 days of recovery) or ``stream`` (records inline, 24 hours).
        siem_initial_lookback_hours: First-run SIEM lookback (clamped to what the mode keeps).
        catchup_concurrency: Slices of a time-window catch-up read at once (1: one after another).
    """

    auth_method: str
    api_base_url: str
    token_url: str
    allow_external_token_url: bool
    client_key: str
    client_secret: Secret
    app_id: str
    app_key: Secret
    access_key: str
    secret_key: Secret
    event_types: tuple[str, ...]
    initial_lookback_hours: int
    overlap_minutes: int
    page_size: int
    max_pages_per_call: int
    emit_other_audit_types: bool
    audit_categories: tuple[str, ...]
    concurrency: int
    inventory_interval_minutes: int
    request_timeout_seconds: float
    proxy_url: str = dataclasses.field(repr=False)
    log_level: str
    lag_warning_minutes: int
    raw_data_max_bytes: int
    siem_log_types: tuple[str, ...]
    siem_mode: str
    siem_initial_lookback_hours: int
    catchup_concurrency: int

    @classmethod
    def from_parameters(cls, params: Mapping[str, object], *, environ: Mapping[str, str] | None = None) -> Config:
        """Validate host parameters against the manifest and build a ``Config``.

        A parameter whose value is ``None`` counts as absent (hosts send ``null`` for unset fields), so its
        default applies; so does a blank string for secret, numeric, boolean and enum parameters (form
        fields left empty). The secrets fall back to environment variables (``client_secret`` to
        ``MIMECAST_CLIENT_SECRET``, ``app_key`` to ``MIMECAST_APP_KEY``, ``secret_key`` to ``MIMECAST_SECRET_KEY``)
        so that they need not be written into a parameter file. The credentials of the ``auth_method`` not chosen
        are ignored.

        Args:
            params: Parameter name to value, as the host or a parameter file provides them.
            environ: Environment to read the secret fallback from; ``os.environ`` when ``None`` (tests pass
                their own mapping instead of patching the process environment).

        Returns:
            The validated configuration.

        Raises:
            ConfigError: A parameter is unknown, missing (for a credential, the message names the ``auth_method``
                that needs it), of the wrong type, out of range or not one of its choices, or ``api_base_url``
                does not fit ``auth_method``. ``parameter`` names it and the message says what is expected.
        """
        specs = parameter_specs()
        env = os.environ if environ is None else environ
        unknown = [name for name in params if name not in specs]
        if unknown:
            raise ConfigError(_unknown_message(unknown, list(specs)), parameter=unknown[0])

        values: dict[str, object] = {}
        for name, spec in specs.items():
            if not spec.applies(values):  # a credential of the other auth_method: not read at all
                values[name] = _unused(spec)
                continue
            raw = params.get(name)
            if spec.type in _BLANK_IS_ABSENT and isinstance(raw, str) and not raw.strip():
                raw = None
            if raw is None and spec.env is not None:
                env_value = env.get(spec.env)
                raw = env_value if env_value else None
            if raw is None:
                if spec.required_by(values):
                    raise ConfigError(_missing_message(spec), parameter=name)
                raw = spec.default
            values[name] = _convert(spec, raw)

        # https only (except loopback), and only hosts that fit the auth method: see connector/api/urls.py.
        auth_method = str(values["auth_method"])
        api_base_url = validate_base_url(str(values["api_base_url"]), auth_method=auth_method)
        values["api_base_url"] = api_base_url
        values["proxy_url"] = validate_proxy_url(str(values["proxy_url"]))
        if auth_method == "oauth2":
            token_url = str(values["token_url"])
            values["token_url"] = (
                validate_base_url(token_url, parameter="token_url") if token_url else default_token_url(api_base_url)
            )
            # The client secret is sent to token_url: only to a host the user has reason to trust, unless allowed.
            check_token_host(
                str(values["token_url"]), api_base_url, allow_other=bool(values["allow_external_token_url"])
            )
        else:  # fail now, not on the first request: a Secret Key that is not base64, ids a header cannot carry
            check_api_keys(str(values["app_id"]), str(values["access_key"]), _as_secret(values["secret_key"]))
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
        """Load parameters from a JSON file (YAML when the name ends in ``.yaml``/``.yml``) and validate them.

        Args:
            path: The parameter file: one object mapping parameter names to values.
            environ: As for ``from_parameters``.

        Returns:
            The validated configuration.

        Raises:
            ConfigError: The file cannot be read or parsed, is not an object, or holds a bad parameter. The
                message names the file; parse errors give the line but never echo file content, which may
                hold the secret.
        """
        file = Path(path)
        data = _read_document(file)
        # The file may also hold the CLI's output settings: not parameters (see ``output_sections``).
        params = {key: value for key, value in data.items() if key != OUTPUTS_SECTION}
        try:
            return cls.from_parameters(params, environ=environ)
        except ConfigError as exc:
            raise ConfigError(f"Configuration file {file}: {exc}", parameter=exc.parameter) from None

    def redacted(self) -> dict[str, Any]:
        """A JSON-ready summary of the configuration with secrets masked, for logs and ``check`` output."""
        summary: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Secret):
                summary[field.name] = str(value)
            elif field.name == "proxy_url":
                summary[field.name] = redact_url(value)
            elif isinstance(value, tuple):
                summary[field.name] = list(value)
            else:
                summary[field.name] = value
        return summary

    def __post_init__(self) -> None:
        # A plain str here would show in repr() and redacted(); fail loudly rather than leak.
        for name in _SECRET_NAMES:
            if not isinstance(getattr(self, name), Secret):
                raise TypeError(f"Config.{name} must be a connector.secret.Secret")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle every field but the secrets (a host may run ``collect()`` in a worker process): the copy holds
        ``WITHHELD`` instead of each secret that is set, and the worker gives them back with ``with_secret``."""
        state = {field.name: getattr(self, field.name) for field in fields(self)}
        for name in _SECRET_NAMES:
            if state[name]:  # NOT_SET (a secret of the other auth_method) and WITHHELD pickle as they are
                state[name] = WITHHELD
        return (_unpickle_config, (state,))

    def _secrets_in_use(self) -> list[str]:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        specs = parameter_specs()
        return [name for name in _SECRET_NAMES if specs[name].applies(values)]

    def with_secret(
        self,
        client_secret: str | Secret | None = None,
        *,
        app_key: str | Secret | None = None,
        secret_key: str | Secret | None = None,
    ) -> Config:
        """This configuration with the secrets given (each checked as ``from_parameters`` checks it); the others
        stay as they are. With ``oauth2`` give ``client_secret``; with ``api_keys_v1``, ``app_key`` and
        ``secret_key``.

        Raises:
            ConfigError: A secret is empty, too short, not base64 (``secret_key``), or not used by this
                configuration's ``auth_method``; ``parameter`` names it.
            TypeError: No secret was given.
        """
        given = {"client_secret": client_secret, "app_key": app_key, "secret_key": secret_key}
        in_use = self._secrets_in_use()
        changes: dict[str, Secret] = {}
        for name, raw in given.items():
            if raw is None:
                continue
            if name not in in_use:
                raise ConfigError(
                    f"Parameter '{name}' is not used with auth_method {self.auth_method}; it was not set.",
                    parameter=name,
                )
            changes[name] = _as_secret(_convert(parameter_specs()[name], raw))
        if not changes:
            raise TypeError("with_secret() needs at least one secret")
        if "secret_key" in changes:
            check_api_keys(self.app_id, self.access_key, changes["secret_key"])
        return replace(self, **changes)  # type: ignore[arg-type]

    def require_secret(self) -> None:
        """Raise unless every secret the ``auth_method`` uses is present (a configuration unpickled without
        ``with_secret`` has none).

        Raises:
            ConfigError: A secret was withheld by pickling; ``parameter`` names it.
        """
        for name in self._secrets_in_use():
            if getattr(self, name).withheld:
                call = "config.with_secret(secret)" if name == "client_secret" else f"config.with_secret({name}=...)"
                raise ConfigError(
                    f"Parameter '{name}' was withheld when this configuration was pickled (secrets never are); "
                    f"call {call} in the process that runs the connector.",
                    parameter=name,
                )


def _read_document(file: Path) -> Mapping[str, object]:
    """The object a parameter file holds (JSON, or YAML when the name ends in ``.yaml``/``.yml``).

    Raises:
        ConfigError: The file cannot be read or parsed, or is not an object; parse errors give the line but never
            echo file content, which may hold a secret.
    """
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read configuration file {file}: {exc.strerror or exc}. Check the path and its permissions."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"Configuration file {file} is not UTF-8 text.") from None

    data: object
    if file.suffix.lower() in {".yaml", ".yml"}:
        try:
            data = yaml.safe_load(text)
        except RecursionError:
            raise ConfigError(f"Configuration file {file} is nested too deeply to be a parameter file.") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(f"Configuration file {file} is not valid YAML: {problem}{where}.") from None
    else:
        try:
            data = json.loads(text)
        except RecursionError:
            raise ConfigError(f"Configuration file {file} is nested too deeply to be a parameter file.") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"Configuration file {file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
            ) from None

    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        raise ConfigError(
            f"Configuration file {file} must hold one object mapping parameter names to values, "
            f"got {type(data).__name__}."
        )
    return data


# -- output settings: the CLI's `run --output` destinations, not manifest parameters -------------------------------

OUTPUTS_SECTION = "outputs"
"""The key of a parameter file that holds the CLI's output settings: ``{"outputs": {"hec": {...}, ...}}``.

Not a manifest parameter, on purpose. The manifest declares what a host gives the connector, and a host stores
batches in its own tables: the outputs (and a Splunk HEC token among them) belong to ``mimecast-connector run``
only. A manifest parameter of type object would put a sink's secret into every host's form and summary, and would
need a schema for a value only the CLI reads. So ``Config.from_parameters`` (the host's door) refuses the key,
``Config.from_file`` skips it, and ``output_sections`` reads it; each output validates its own settings
(``output_settings``), naming a bad one ``outputs.<kind>.<key>``."""


def output_sections(path: str | os.PathLike[str]) -> Mapping[str, Mapping[str, object]]:
    """The ``outputs`` section of a parameter file: output kind -> its raw settings (empty when there is none).

    Only the shape is checked here; the settings are validated by the output that uses them (``output_settings``).

    Raises:
        ConfigError: The file cannot be read, or ``outputs`` (or one of its entries) is not an object; ``parameter``
            names it.
    """
    file = Path(path)
    raw = _read_document(file).get(OUTPUTS_SECTION)
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"Configuration file {file}: '{OUTPUTS_SECTION}' must be an object mapping an output kind (such as hec) "
            f"to its settings; got {_show(raw)}.",
            parameter=OUTPUTS_SECTION,
        )
    sections: dict[str, Mapping[str, object]] = {}
    for name, settings in raw.items():
        where = f"{OUTPUTS_SECTION}.{name}"
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping) or not all(isinstance(key, str) for key in settings):
            raise ConfigError(
                f"Configuration file {file}: '{where}' must be an object of settings; got {_show(settings)}.",
                parameter=where,
            )
        sections[str(name)] = MappingProxyType(dict(settings))
    return MappingProxyType(sections)


def output_settings(
    specs: Sequence[ParameterSpec], raw: Mapping[str, object], *, environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Validate one output's settings with the parameter rules (types, ranges, secrets, environment fallback).

    Args:
        specs: The settings the output knows, each named ``outputs.<kind>.<key>`` (that name is what errors show).
        raw: The ``outputs.<kind>`` object from the file.
        environ: Where a setting's ``env`` fallback is read; ``os.environ`` when None.

    Returns:
        ``key`` -> converted value (a ``Secret`` for a secret), for every spec.

    Raises:
        ConfigError: An unknown key (with the closest known one), a missing required setting or a bad value;
            ``parameter`` is its full name, such as ``outputs.hec.token``.
    """
    env = os.environ if environ is None else environ
    by_key = {spec.name.rsplit(".", 1)[-1]: spec for spec in specs}
    prefix = specs[0].name.rsplit(".", 1)[0] + "." if specs else ""
    unknown = [prefix + key for key in raw if key not in by_key]
    if unknown:
        raise ConfigError(_unknown_message(unknown, [spec.name for spec in specs]), parameter=unknown[0])
    values: dict[str, object] = {}
    for key, spec in by_key.items():
        value = raw.get(key)
        if spec.type in _BLANK_IS_ABSENT and isinstance(value, str) and not value.strip():
            value = None
        if value is None and spec.env is not None:
            value = env.get(spec.env) or None
        if value is None:
            if spec.required:
                raise ConfigError(_missing_message(spec), parameter=spec.name)
            value = spec.default
        if spec.secret and isinstance(value, str) and len(value) < spec.min_length:  # before _convert's Mimecast text
            raise ConfigError(
                f"Parameter '{spec.name}' must be at least {spec.min_length} characters long; the value given is "
                "shorter (a shorter one could not be masked in logs without masking ordinary words).",
                parameter=spec.name,
            )
        values[key] = _convert(spec, value)
    return values


_SECRET_NAMES = tuple(name for name, spec in parameter_specs().items() if spec.secret)


def _unpickle_config(state: dict[str, object]) -> Config:
    return Config(**state)  # type: ignore[arg-type]


def _unused(spec: ParameterSpec) -> object:
    """The value of a parameter its ``only_when`` excludes: its default, else empty (``NOT_SET`` for a secret)."""
    if spec.default is not None:
        return _convert(spec, spec.default)
    return NOT_SET if spec.secret else ""


def _as_secret(value: object) -> Secret:
    if not isinstance(value, Secret):
        raise TypeError("expected a connector.secret.Secret")
    return value


def _unknown_message(unknown: list[str], known: list[str]) -> str:
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        parts.append(f"'{name}'{hint}")
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return f"Unknown {noun} {', '.join(parts)}. Known parameters: {', '.join(known)}."


def _missing_message(spec: ParameterSpec) -> str:
    message = f"Parameter '{spec.name}' ({spec.label}) is required"
    condition = spec.only_when or spec.required_when
    if condition is not None:
        message += f" when {condition[0]} is {condition[1]}"
    if spec.env is not None:
        message += f": set it, or set the environment variable {spec.env}"
    return message + "."


def _show(value: object) -> str:
    """A short repr of a bad value: bounded in depth and width before it is built (a YAML alias bomb is a small
    file whose full repr would take gigabytes), then cut to ``_MAX_SHOWN`` characters."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _bad(spec: ParameterSpec, expected: str, value: object) -> ConfigError:
    # Never echo a secret, even a malformed one: only its type.
    got = f"a value of type {type(value).__name__}" if spec.secret else _show(value)
    return ConfigError(f"Parameter '{spec.name}' must be {expected}; got {got}.", parameter=spec.name)


def _range_text(spec: ParameterSpec) -> str:
    def fmt(bound: float | None) -> str:
        return f"{bound:g}" if bound is not None else ""

    if spec.minimum is not None and spec.maximum is not None:
        return f" between {fmt(spec.minimum)} and {fmt(spec.maximum)}"
    if spec.minimum is not None:
        return f" of at least {fmt(spec.minimum)}"
    if spec.maximum is not None:
        return f" of at most {fmt(spec.maximum)}"
    return ""


def _check_range(spec: ParameterSpec, number: float, expected: str) -> None:
    if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
        raise _bad(spec, expected, number)


def _split_list(spec: ParameterSpec, value: object, expected: str) -> list[str]:
    if isinstance(value, str):
        # Hosts that only store strings pass lists as comma-separated text.
        items: list[object] = [part for part in value.split(",") if part.strip()] if value.strip() else []
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        raise _bad(spec, expected, value)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _bad(spec, expected, value)
        text = item.strip()
        if text not in result:
            result.append(text)
    if len(result) < spec.min_items:
        raise _bad(spec, expected, value)
    return result


def _choice(spec: ParameterSpec, text: str) -> str | None:
    for choice in spec.choices:
        if choice.lower() == text.lower():
            return choice
    return None


def _convert(spec: ParameterSpec, value: object) -> object:
    """Convert one raw value to the field type of ``spec``; raises a ConfigError naming the parameter."""
    kind = spec.type
    if kind == "secret":
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str) or not value.strip():
            raise _bad(spec, "a non-empty string", value)
        if len(value) < spec.min_length:
            # The length is not shown either. A short secret would be masked inside ordinary words in the logs,
            # and where the mask shows up would give it away.
            raise ConfigError(
                f"Parameter '{spec.name}' must be at least {spec.min_length} characters long; the value given is "
                f"shorter. Use the secret Mimecast issued for the API application (they are far longer).",
                parameter=spec.name,
            )
        return Secret(value)

    if kind == "string":
        if not isinstance(value, str):
            raise _bad(spec, "a string", value)
        text = value.strip()
        if spec.required and not text:
            raise _bad(spec, "a non-empty string", value)
        return text

    if kind == "integer":
        expected = f"an integer{_range_text(spec)}"
        number: int
        if isinstance(value, bool):
            raise _bad(spec, expected, value)
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            number = int(value.strip())
        else:
            raise _bad(spec, expected, value)
        _check_range(spec, number, expected)
        return number

    if kind == "number":
        expected = f"a number{_range_text(spec)}"
        real: float
        if isinstance(value, bool):
            raise _bad(spec, expected, value)
        if isinstance(value, int | float):
            real = float(value)
        elif isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
            real = float(value.strip())
        else:
            raise _bad(spec, expected, value)
        if not math.isfinite(real):
            raise _bad(spec, expected, value)
        _check_range(spec, real, expected)
        return real

    if kind == "boolean":
        expected = "a boolean (true or false)"
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise _bad(spec, expected, value)

    if kind == "enum":
        expected = f"one of {', '.join(spec.choices)}"
        choice = _choice(spec, value.strip()) if isinstance(value, str) else None
        if choice is None:
            raise _bad(spec, expected, value)
        return choice

    if kind == "multiselect":
        at_least = f"at least {spec.min_items} of " if spec.min_items else "a list of values from "
        expected = f"{at_least}{', '.join(spec.choices)}"
        selected = set()
        for item in _split_list(spec, value, expected):
            choice = _choice(spec, item)
            if choice is None:
                raise _bad(spec, expected, value)
            selected.add(choice)
        # Manifest order, so runs and logs are deterministic whatever order the host sent.
        return tuple(choice for choice in spec.choices if choice in selected)

    if kind == "string_list":
        return tuple(_split_list(spec, value, "a list of non-empty strings"))

    raise ConfigError(f"Parameter '{spec.name}' has unsupported manifest type {kind!r}.", parameter=spec.name)
