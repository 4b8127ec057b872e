"""One Settings object, from `DMP_XDS_*` environment variables or a TOML file.

Precedence: environment variable > TOML file (`DMP_XDS_CONFIG` or `--config`) > default.
Keys in the TOML file are the setting names (`database_url = "..."`), at top level or under a
`[dmp_xds]` table.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "DMP_XDS_"
REPOSITORY_ID_FILE = "repository-unique-id"
AUDIT_KEY_FILE = "audit-key"
AUDIT_CHECKPOINT_FILE = "audit-checkpoints.log"
OFF = "off"
# Where the project's own files are, from the package's root rather than from the depth of the
# module that reads them. data/ is inside the package, in a checkout and in a wheel alike; the
# migrations/, wsdl/ and schemas/ folders are found by resource_dir().
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
# A wheel carries the top-level migrations/, wsdl/ and schemas/ folders of the repository here
# (the package-dir mapping of pyproject.toml); a checkout (editable install, PYTHONPATH=src) has
# no such folder and its code reads them where they are, beside src/.
PACKAGED_RESOURCES_DIR = PACKAGE_DIR / "resources"
RESOURCE_FOLDERS = ("migrations", "wsdl", "schemas")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


class ResourceMissing(Exception):
    """A folder the package ships with is not there: the installation is incomplete."""


def checkout_root() -> Path | None:
    """The source checkout this code runs from (src/dmp_xds inside it), or None when the package
    is installed (from a wheel): then there is no checkout, nor anything beside one."""
    root = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def resource_dir(name: str) -> Path:
    """The folder `name` of RESOURCE_FOLDERS: the copy inside an installed package, else the
    checkout's top-level one. Every reader of these folders finds them here."""
    if name not in RESOURCE_FOLDERS:
        raise ValueError(f"{name!r} is not one of the package's resource folders {RESOURCE_FOLDERS}")
    packaged = PACKAGED_RESOURCES_DIR / name
    if packaged.is_dir():
        return packaged
    root = checkout_root()
    if root is not None and (root / name).is_dir():
        return root / name
    raise ResourceMissing(
        f"dmp-xds cannot find its {name}/ folder: neither {packaged} (an installed package) nor "
        f"a source checkout's {name}/ exists. The installation is incomplete: reinstall dmp-xds "
        "from a wheel built from the repository (pip wheel .) or from the checkout itself."
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # default: SQLite file under data_dir
    # --- where the documents are: "" = files under <data_dir>/documents; "s3://bucket/prefix" =
    # an S3-compatible object store (storage/s3_blobstore.py), reached with the s3_* settings.
    blob_store: str = ""
    s3_endpoint_url: str = ""  # e.g. https://s3.eu-west-3.amazonaws.com or http://127.0.0.1:7480
    s3_region: str = "us-east-1"  # signed into every request; S3-compatible servers mostly accept any
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""  # or, better, in a file:
    s3_secret_access_key_file: str = ""  # a file holding the secret (kept out of the environment)
    host: str = "127.0.0.1"
    port: int = 8080
    repository_unique_id: str = ""  # default: generated once, kept in data_dir
    home_community_id: str = ""
    max_request_bytes: int = 256 * 1024 * 1024
    max_xml_bytes: int = 32 * 1024 * 1024  # the SOAP envelope itself, outside MTOM parts
    request_timeout_seconds: float = 60.0
    mllp_port: int | None = None
    profile: str = "cisis"  # "cisis": French DMP rules (INS, CI-SIS value sets); "ihe": plain XDS.b
    value_sets: str = ""  # directory of the ANS CI-SIS value set files; required by the cisis profile
    cda_schema: str = ""  # CDA_extended.xsd; required by the cisis profile unless cda_policy is off
    cda_policy: str = "reject"  # CDA layer findings: "reject", "warn" (accept with warnings) or "off"
    # The XAdES signature of a TD2.1 submission (CI-SIS profile, with authentication): "required"
    # (the DMP's rule: an unsigned submission is refused) or "optional" (editors in development:
    # a signature present is still checked). Without authentication it is always optional.
    submission_signature: str = "required"
    # The ANS TestContenuCDA schematrons folder: the CDA layer then runs the CI-SIS structuration
    # minimale, the IHE / CI-SIS body profiles and the document's volet schematron (with Saxon);
    # "" = no schematron layer.
    schematrons: str = ""
    max_query_results: int = 5000
    log_level: str = "info"
    workers: int = 1  # server processes; each runs a thread pool
    # --- security: who calls (certificate, VIHF), what they may do, the trace of it -----------
    # "vihf": client certificate + signed VIHF, DMP policy, access trace; "none": development only,
    # and only when asked for, by DMP_XDS_AUTH=none or by the code that builds the Settings.
    auth: str = "vihf"
    tls_certificate: str = ""  # PEM chain this server presents; with tls_key, the server speaks HTTPS
    tls_key: str = ""
    trust_anchors: str = ""  # PEM file(s) of trusted root CAs, comma-separated
    trust_intermediates: str = ""  # PEM file(s) of intermediate CAs, comma-separated
    crl_files: str = ""  # CRL files (PEM or DER), comma-separated; required for every CA
    client_cert_header: str = ""  # behind a reverse proxy: header with the client's PEM (URL-encoded)
    trusted_proxies: str = ""  # addresses allowed to send that header, comma-separated
    vihf_audience: str = ""  # required Audience of VIHF assertions ("" = not checked)
    vihf_clock_skew_seconds: float = 120.0
    # A VIHF without Conditions (the DMP's tokens have none) is good this long after its
    # IssueInstant (plus the clock skew); its id is kept that long against replay.
    vihf_max_age_seconds: float = 300.0
    # "accept": RSA-SHA1 VIHF signatures too, as the DMP's own tokens are signed; "refuse": SHA-256 and up only.
    vihf_sha1: str = "accept"
    audit_syslog: str = ""  # ATNA collector: udp://, tcp:// or tls://host:port ("" = off)
    audit_syslog_ca: str = ""  # tls://: PEM file of the CA(s) the collector's certificate chains to
    audit_syslog_certificate: str = ""  # tls://: this server's client certificate (PEM) and key, if asked
    audit_syslog_key: str = ""
    notify_smtp: str = ""  # e-mail relay for the patient's notifications: smtp://, smtp+starttls://, smtps://
    notify_smtp_ca: str = ""  # PEM CA file for a TLS relay ("" = the system's)
    notify_from: str = "dmp-xds@localhost"  # the notifications' sender address
    certificate_cache_seconds: float = 300.0  # how long a certificate's verdict is reused (CRL files: see cps.py)
    # --- whose word an organisation certificate is taken at (security/vihf.py VouchingRules) ----
    # Structure ids (the organisation certificate's OU) of the patient portals, the only ones that
    # may sign a patient's or a legal representative's VIHF, comma-separated; "" = none may.
    patient_portals: str = ""
    # Which establishments may sign a professional's VIHF (DMP indirect mode): "any" (the DMP's
    # rule: the establishment answers for its staff), "none" (cards only), or structure ids.
    establishment_vouching: str = "any"
    # --- the access trace's integrity: keyed chain, checkpoints exported (audit/keys.py, checkpoints.py)
    audit_key_file: str = ""  # HMAC key of the chain; "" = <data_dir>/audit-key, generated once (mode 0600)
    audit_checkpoint_file: str = ""  # checkpoints kept here too; "" = <data_dir>/audit-checkpoints.log; "off" = none
    audit_checkpoint_rows: int = 100  # a round of checkpoints every N rows a process appends...
    audit_checkpoint_seconds: float = 60.0  # ...and T seconds after a row not yet checkpointed
    # --- connections: what a client may hold before its request is read (http_protocol.py) ------
    max_head_bytes: int = 64 * 1024  # request line and header fields; more: 431 and the connection closed
    head_timeout_seconds: float = 10.0  # from a request's first byte to the end of its head; then 408
    idle_timeout_seconds: float = 15.0  # a connection with no request under way (new or kept alive) is closed
    max_connections_per_client: int = 64  # open connections from one address, per worker process; 0 = no limit
    # --- the web front (transport/web/, docs/web.md) -----------------------------------------
    web_session_idle_seconds: float = 1800.0  # a session unused this long is over
    web_session_lifetime_seconds: float = 43200.0  # and any session is over this long after sign-in
    web_code_seconds: float = 300.0  # how long a one-time code sent by e-mail or SMS is good
    web_code_attempts: int = 3  # wrong codes before the pending sign-in dies
    web_max_failed_logins: int = 5  # wrong passwords in a row before the account locks
    web_rate_limit: int = 10  # failed sign-ins from one address, or on one login, per window...
    web_rate_window_seconds: float = 900.0  # ...before further attempts are refused (429)
    web_max_form_bytes: int = 64 * 1024  # a form post (application/x-www-form-urlencoded)
    web_max_upload_bytes: int = 20 * 1024 * 1024  # a multipart upload, files included
    # Where a patient's SMS one-time code goes: "file" (development: appended to
    # <data_dir>/sms-outbox.txt) or "command" (web_sms_command runs with the number and the text).
    web_sms: str = "file"
    web_sms_command: str = ""  # e.g. "/usr/local/bin/send-sms" (no shell; two arguments added)

    @staticmethod
    def paths(value: str) -> list[Path]:
        """A comma-separated list of files."""
        return [Path(p.strip()) for p in value.split(",") if p.strip()]

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def audit_key_path(self) -> Path:
        return Path(self.audit_key_file) if self.audit_key_file else self.data_dir / AUDIT_KEY_FILE

    @property
    def audit_checkpoint_path(self) -> Path | None:
        if self.audit_checkpoint_file == OFF:
            return None
        return Path(self.audit_checkpoint_file) if self.audit_checkpoint_file else self.data_dir / AUDIT_CHECKPOINT_FILE

    @property
    def s3_location(self) -> S3Location | None:
        """The bucket and prefix of `blob_store` (validated by load_settings); None: the filesystem."""
        return parse_blob_store(self.blob_store)

    def public_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        if out["s3_secret_access_key"]:
            out["s3_secret_access_key"] = "(set)"  # `config show` prints settings, never a secret
        out["documents_dir"] = str(self.documents_dir)
        out["audit_key_path"] = str(self.audit_key_path)
        out["audit_checkpoint_path"] = str(self.audit_checkpoint_path or OFF)
        return out


S3_SCHEME = "s3://"


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the documents go on an object store: a bucket, and a key prefix ("" or ending in /)."""

    bucket: str
    prefix: str


def parse_blob_store(value: str) -> S3Location | None:
    """`DMP_XDS_BLOB_STORE`: "" is the filesystem, None here; `s3://bucket/prefix`
    an object store. A malformed value is a ConfigError naming what is wrong."""
    value = value.strip()
    if not value:
        return None
    if not value.startswith(S3_SCHEME):
        raise ConfigError(
            f"DMP_XDS_BLOB_STORE must be empty (documents under the data directory) or s3://bucket/prefix, not {value!r}"
        )
    bucket, _, prefix = value[len(S3_SCHEME) :].partition("/")
    if not _valid_bucket(bucket):
        raise ConfigError(
            f"DMP_XDS_BLOB_STORE={value!r}: {bucket!r} is not a bucket name "
            "(3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigError(f"DMP_XDS_BLOB_STORE={value!r}: the key prefix {prefix!r} has an empty, . or .. part")
    return S3Location(bucket, prefix + "/" if prefix else "")


def _valid_bucket(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
    return (
        3 <= len(name) <= 63 and set(name) <= allowed and name[0].isalnum() and name[-1].isalnum() and ".." not in name
    )


def missing_s3_settings(settings: Settings) -> list[str]:
    """What an object store needs and is not given, as the variables to set."""
    missing = []
    if not settings.s3_endpoint_url:
        missing.append("DMP_XDS_S3_ENDPOINT_URL")
    if not settings.s3_access_key_id:
        missing.append("DMP_XDS_S3_ACCESS_KEY_ID")
    if not settings.s3_secret_access_key and not settings.s3_secret_access_key_file:
        missing.append("DMP_XDS_S3_SECRET_ACCESS_KEY (or DMP_XDS_S3_SECRET_ACCESS_KEY_FILE)")
    return missing


_INT_FIELDS = {
    "port",
    "max_request_bytes",
    "max_xml_bytes",
    "max_query_results",
    "workers",
    "audit_checkpoint_rows",
    "max_head_bytes",
    "max_connections_per_client",
    "web_code_attempts",
    "web_max_failed_logins",
    "web_rate_limit",
    "web_max_form_bytes",
    "web_max_upload_bytes",
}
_OPTIONAL_INT_FIELDS = {"mllp_port"}
_FLOAT_FIELDS = {
    "request_timeout_seconds",
    "vihf_clock_skew_seconds",
    "vihf_max_age_seconds",
    "certificate_cache_seconds",
    "audit_checkpoint_seconds",
    "head_timeout_seconds",
    "idle_timeout_seconds",
    "web_session_idle_seconds",
    "web_session_lifetime_seconds",
    "web_code_seconds",
    "web_rate_window_seconds",
}


def _coerce(name: str, raw: Any) -> Any:
    try:
        if name == "data_dir":
            return Path(str(raw))
        if name in _INT_FIELDS:
            return int(raw)
        if name in _OPTIONAL_INT_FIELDS:
            return None if raw in ("", None) else int(raw)
        if name in _FLOAT_FIELDS:
            return float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: {raw!r} is not a valid value ({exc})") from exc
    return str(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    table = data.get("dmp_xds", data)
    if not isinstance(table, dict):
        raise ConfigError(f"configuration file {path}: [dmp_xds] must be a table")
    return table


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults, then the TOML file, then the environment, then `overrides`."""
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    file_name = config_file or env.get(ENV_PREFIX + "CONFIG")
    if file_name:
        for key, raw in _read_toml(Path(file_name)).items():
            if key not in known:
                raise ConfigError(f"configuration file {file_name}: unknown setting {key!r}")
            values[key] = _coerce(key, raw)
    for name in known:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw)
    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _coerce(key, raw)
    settings = Settings(**values)
    if settings.workers < 1:
        raise ConfigError(f"DMP_XDS_WORKERS must be at least 1, not {settings.workers}")
    if settings.profile not in ("cisis", "ihe"):
        raise ConfigError(f"DMP_XDS_PROFILE must be 'cisis' or 'ihe', not {settings.profile!r}")
    if settings.auth not in ("vihf", "none"):
        raise ConfigError(f"DMP_XDS_AUTH must be 'vihf' or 'none', not {settings.auth!r}")
    if settings.vihf_sha1 not in ("accept", "refuse"):
        raise ConfigError(f"DMP_XDS_VIHF_SHA1 must be 'accept' or 'refuse', not {settings.vihf_sha1!r}")
    if settings.vihf_max_age_seconds <= 0:
        raise ConfigError(f"DMP_XDS_VIHF_MAX_AGE_SECONDS must be positive, not {settings.vihf_max_age_seconds}")
    if bool(settings.tls_certificate) != bool(settings.tls_key):
        raise ConfigError("DMP_XDS_TLS_CERTIFICATE and DMP_XDS_TLS_KEY go together: set both or neither")
    if settings.audit_checkpoint_rows < 1 or settings.audit_checkpoint_seconds <= 0:
        raise ConfigError(
            "DMP_XDS_AUDIT_CHECKPOINT_ROWS must be at least 1 and DMP_XDS_AUDIT_CHECKPOINT_SECONDS more than 0"
        )
    for name in ("max_head_bytes", "head_timeout_seconds", "idle_timeout_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"DMP_XDS_{name.upper()} must be positive, not {getattr(settings, name)}")
    if settings.max_connections_per_client < 0:
        raise ConfigError(
            "DMP_XDS_MAX_CONNECTIONS_PER_CLIENT must be 0 (no limit) or more, "
            f"not {settings.max_connections_per_client}"
        )
    if settings.submission_signature not in ("required", "optional"):
        raise ConfigError(
            f"DMP_XDS_SUBMISSION_SIGNATURE must be 'required' or 'optional', not {settings.submission_signature!r}"
        )
    if settings.web_sms not in ("file", "command"):
        raise ConfigError(f"DMP_XDS_WEB_SMS must be 'file' or 'command', not {settings.web_sms!r}")
    if settings.web_sms == "command" and not settings.web_sms_command:
        raise ConfigError("DMP_XDS_WEB_SMS=command needs DMP_XDS_WEB_SMS_COMMAND (the program that sends an SMS)")
    for name in (
        "web_session_idle_seconds",
        "web_session_lifetime_seconds",
        "web_code_seconds",
        "web_code_attempts",
        "web_max_failed_logins",
        "web_rate_limit",
        "web_rate_window_seconds",
        "web_max_form_bytes",
        "web_max_upload_bytes",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"DMP_XDS_{name.upper()} must be positive, not {getattr(settings, name)}")
    if settings.cda_policy not in ("reject", "warn", "off"):
        raise ConfigError(f"DMP_XDS_CDA_POLICY must be 'reject', 'warn' or 'off', not {settings.cda_policy!r}")
    if parse_blob_store(settings.blob_store) is not None:
        missing = missing_s3_settings(settings)
        if missing:
            raise ConfigError(f"DMP_XDS_BLOB_STORE={settings.blob_store} needs {', '.join(missing)}")
        if not settings.s3_endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"DMP_XDS_S3_ENDPOINT_URL must be an http:// or https:// URL, not {settings.s3_endpoint_url!r}"
            )
    return settings


def default_database_url(settings: Settings) -> str:
    return f"sqlite:///{(settings.data_dir / 'registry.db').resolve()}"


def resolve(settings: Settings) -> Settings:
    """Fill the defaults that depend on the data directory, creating what must persist.

    The repositoryUniqueId must not change between restarts (it is stored in every
    DocumentEntry), so when none is configured one is generated once as a UUID-derived OID
    (`2.25.<uuid as integer>`, ITU-T X.667) and kept in the data directory.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_url or default_database_url(settings)
    repository_id = settings.repository_unique_id
    if not repository_id:
        id_file = settings.data_dir / REPOSITORY_ID_FILE
        if id_file.exists():
            repository_id = id_file.read_text().strip()
        else:
            repository_id = f"2.25.{uuid.uuid4().int}"
            tmp = id_file.with_suffix(".tmp")
            tmp.write_text(repository_id + "\n")
            tmp.replace(id_file)
    return Settings(
        **{
            **{f.name: getattr(settings, f.name) for f in fields(Settings)},
            "database_url": database_url,
            "repository_unique_id": repository_id,
        }
    )


def to_environment(settings: Settings) -> dict[str, str]:
    """The settings as `DMP_XDS_*` variables, for worker processes that load their own."""
    out: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if value is not None:
            out[ENV_PREFIX + f.name.upper()] = str(value)
    return out
