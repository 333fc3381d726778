"""One typed, immutable settings object.

Values come, lowest precedence first, from the defaults below (the organisation's rules), then
``settings.toml``, then ``CALLCENTER_…`` environment variables (nested sections with ``__``, e.g.
``CALLCENTER_DATABASE__URL``). Unknown keys and bad values stop start-up with a message naming them.
Secrets (web secret key, Twilio auth token, AMI secret) are accepted only from the environment.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from callcenter.exceptions import ConfigurationError

ENV_PREFIX = "CALLCENTER_"
SETTINGS_FILE_ENV = "CALLCENTER_SETTINGS"
DEFAULT_SETTINGS_FILE = "settings.toml"

# (section, key) pairs that must never be read from a file.
SECRET_KEYS: frozenset[tuple[str, str]] = frozenset(
    {("web", "secret_key"), ("twilio", "auth_token"), ("ami", "secret")}
)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Organisation(Section):
    company_name: str = "示例公司"
    department: str = "客户服务中心"
    timezone: str = "Asia/Shanghai"
    phone_region: str = Field(default="CN", min_length=2, max_length=2)
    default_language: Literal["zh", "en"] = "zh"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("phone_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OpeningTimes(Section):
    """Opening hours of one kind of day; ``closed`` keeps the hotline shut all day."""

    open: time = time(6, 0)
    close: time = time(22, 0)
    closed: bool = False

    @field_validator("close")
    @classmethod
    def _close_after_open(cls, value: time, info: Any) -> time:
        opened = info.data.get("open")
        if opened is not None and value <= opened:
            raise ValueError("close must be later than open")
        return value


class Hours(OpeningTimes):
    """Hotline hours in the organisation's zone.

    ``open``/``close`` apply on working days (make-up working days 调休 included); ``rest_days``
    (weekends) and ``holidays`` (statutory days off) have their own, by default the same 06:00–22:00.
    """

    rest_days: OpeningTimes = OpeningTimes()
    holidays: OpeningTimes = OpeningTimes()


class Calendar(Section):
    """The working-day calendar: the Chinese statutory calendar (chinese_calendar) plus overrides.

    ``extra_holidays`` and ``extra_workdays`` take precedence over the library; they are how a year
    the library does not know yet is filled in once the State Council publishes it.
    """

    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()

    @field_validator("extra_workdays")
    @classmethod
    def _disjoint(cls, value: tuple[date, ...], info: Any) -> tuple[date, ...]:
        clash = set(value) & set(info.data.get("extra_holidays") or ())
        if clash:
            raise ValueError(f"dates both holiday and workday: {sorted(clash)}")
        return value


class Database(Section):
    url: str = "sqlite:///var/callcenter.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=200)


class Ivr(Section):
    flows_dir: str = "ivr_flows"
    max_retries: int = Field(default=2, ge=0, le=9)
    default_queue: str = "consultation"
    operator_queue: str = "consultation"  # where the operator key (0) goes
    vip_priority: int = Field(default=10, ge=1, le=100)
    queue_timeout_s: int = Field(default=600, ge=10)  # Queue()'s own timeout (CC_QUEUE_TIMEOUT)


class Agi(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=0, le=65535)  # 0: any free port (tests)
    env_timeout_s: float = Field(default=5.0, gt=0)  # for the whole agi_* block, not per read
    reply_timeout_s: float = Field(default=120.0, gt=0)
    max_line_bytes: int = Field(default=8192, ge=256)
    max_env_lines: int = Field(default=200, ge=10)
    max_sessions: int = Field(default=500, ge=1)  # sessions at once (one thread each); more are closed


class Ami(Section):
    """The Asterisk Manager Interface; an empty ``host`` leaves the AMI listener off."""

    host: str = ""
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "callcenter"
    secret: SecretStr | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0)
    action_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    originate_timeout_s: int = Field(default=30, ge=15)  # ring at least 15 s
    outbound_context: str = "callcenter-outbound"
    outbound_trunk: str = "PJSIP/{number}@trunk"  # dial string; {number} is the E.164 number


class Department(Section):
    """A specialist department consultation calls can be transferred to."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name_zh: str
    name_en: str
    asterisk_context: str = "callcenter-departments"
    asterisk_exten: str
    twilio_number: str = ""


DEFAULT_DEPARTMENTS: tuple[Department, ...] = (
    Department(code="after_sales", name_zh="售后服务部", name_en="After-sales service", asterisk_exten="801"),
    Department(code="tech_rd", name_zh="技术研发部", name_en="Technical R&D", asterisk_exten="802"),
    Department(code="product_rd", name_zh="产品研发部", name_en="Product R&D", asterisk_exten="803"),
)


class Twilio(Section):
    """Twilio Programmable Voice; an empty ``account_sid`` leaves the Twilio channel off."""

    account_sid: str = ""
    auth_token: SecretStr | None = None
    # The URL Twilio calls us at (what it signs); proxies change scheme and host, so never the request's.
    public_base_url: str = ""
    api_base_url: str = ""  # empty: Twilio's own API; tests point it at a local server
    caller_id: str = ""  # our Twilio number, E.164, for outbound calls
    say_voice: str = "Polly.Zhiyu"  # <Say> voice for zh-CN; en-US uses say_voice_en
    say_voice_en: str = "Polly.Joanna"
    prompts_base_url: str = ""  # if set, <Play> rendered prompt files from here instead of <Say>
    hold_music_url: str = ""  # played while waiting in the queue; empty: silence between announcements
    ring_timeout_s: int = Field(default=30, ge=15, le=600)
    machine_detection: bool = False  # answering-machine detection on outbound calls
    record_calls: bool = True
    delete_after_download: bool = False  # delete from Twilio once our copy is verified
    download_retries: int = Field(default=5, ge=0, le=20)


class Web(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: SecretStr | None = None
    session_minutes: int = Field(default=480, ge=5)
    default_locale: Literal["zh", "en"] = "zh"
    # Largest request body (staff pages and Twilio's webhooks), forms included; bigger ones get 413.
    # A case attachment upload may be ``cases.attachment_max_mb`` + 1 MB.
    max_request_kb: int = Field(default=1024, ge=64, le=1_048_576)


class Storage(Section):
    var_dir: str = "var"
    recordings_dir: str = "var/recordings"
    # Where Asterisk's MixMonitor and Record() write (its monitor folder, mounted or shared here);
    # recordings are stored relative to it.
    monitor_dir: str = "var/monitor"
    # The same folder as Asterisk names it (MIXMONITOR_FILENAME is absolute on Asterisk's side).
    asterisk_monitor_dir: str = "/var/spool/asterisk/monitor"
    # Where render-prompts writes the sound files (copy or mount into Asterisk's sounds folder).
    sounds_dir: str = "var/sounds"
    spool_dir: str = "var/spool"


class Recordings(Section):
    """When Asterisk's recordings are checked, how often an unusable file is looked at again, and
    when a recording is too short for its call."""

    # A recording is checked this long after its call ended (MixMonitor closes the file at hang-up).
    verify_delay_s: int = Field(default=10, ge=0, le=3600)
    # An invalid file is checked again this many times (0: never), first after recheck_first_minutes,
    # then after twice as long each time; after the last try it stays invalid.
    recheck_tries: int = Field(default=5, ge=0, le=20)
    recheck_first_minutes: int = Field(default=5, ge=1, le=1440)
    # Reconcile lists an answered call whose recordings last less than
    # talk_s × short_ratio − short_tolerance_s (or hold no audio at all).
    short_ratio: float = Field(default=0.5, gt=0, le=1)
    short_tolerance_s: int = Field(default=5, ge=0)


class CallerRules(Section):
    frequent_calls: int = Field(default=3, ge=1)
    frequent_window_days: int = Field(default=7, ge=1)


class CaseCategory(Section):
    """One top-level case category (configurable taxonomy, REQUIREMENTS C22)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name_zh: str
    name_en: str


DEFAULT_CASE_CATEGORIES: tuple[CaseCategory, ...] = (
    CaseCategory(code="service_attitude", name_zh="服务态度", name_en="Service attitude"),
    CaseCategory(code="service_quality", name_zh="服务质量", name_en="Service quality"),
    CaseCategory(code="product", name_zh="产品问题", name_en="Product"),
    CaseCategory(code="after_sales", name_zh="售后服务", name_en="After-sales service"),
    CaseCategory(code="other", name_zh="其他", name_en="Other"),
)


class CaseRules(Section):
    """Cases (工单): SLA numbers from the rulebooks and the category taxonomy (REQUIREMENTS C19–38)."""

    first_reply_hours: int = Field(default=24, ge=1)
    major_reply_hours: int = Field(default=4, ge=1)  # first reply on a `major` case (C33)
    ordinary_days: int = Field(default=3, ge=1)  # working days to resolve an ordinary case
    complex_days: int = Field(default=7, ge=1)
    repeat_window_days: int = Field(default=30, ge=1)
    promise_warning_minutes: int = Field(default=30, ge=0)
    complaint_callback_hours: int = Field(default=24, ge=0)
    dissatisfied_below: int = Field(default=3, ge=1, le=5)  # satisfaction under this is dissatisfied
    attachment_max_mb: int = Field(default=20, ge=1, le=1024)
    categories: tuple[CaseCategory, ...] = DEFAULT_CASE_CATEGORIES

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: tuple[CaseCategory, ...]) -> tuple[CaseCategory, ...]:
        codes = [category.code for category in value]
        if not codes or len(set(codes)) != len(codes):
            raise ValueError("case category codes must be unique and at least one")
        return value


class Accounts(Section):
    """Sign-in protection and passwords (docs/web.md, "Accounts").

    ``max_failures`` failed sign-ins for one username within ``failure_window_minutes`` lock that
    username for ``lockout_minutes``; ``max_failures_per_address`` does the same for one client
    address (higher: a whole call centre may sit behind one office NAT). A session ends after
    ``idle_minutes`` without a request, and in any case ``web.session_minutes`` after sign-in.
    """

    max_failures: int = Field(default=5, ge=1, le=100)
    max_failures_per_address: int = Field(default=30, ge=1, le=10_000)
    failure_window_minutes: int = Field(default=15, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    idle_minutes: int = Field(default=30, ge=1)
    min_password_length: int = Field(default=8, ge=8, le=128)


class ShiftTimes(Section):
    """One shift of the day in the organisation's zone (``end`` may pass midnight)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    name_zh: str
    name_en: str
    start: time
    end: time


DEFAULT_SHIFTS: tuple[ShiftTimes, ...] = (
    ShiftTimes(code="early", name_zh="早班", name_en="Early shift", start=time(6, 0), end=time(14, 0)),
    ShiftTimes(code="late", name_zh="晚班", name_en="Late shift", start=time(14, 0), end=time(22, 0)),
)
DEFAULT_WRAPUP_CATEGORIES: tuple[str, ...] = (
    "consultation",
    "complaint",
    "suggestion",
    "fault_report",
    "transferred",
    "wrong_number",
    "other",
)


class Console(Section):
    """The agent console: live screen-pops, presence, wrap-up and shifts.

    ``bus``: how screen-pops reach the web from other processes. ``local``: in-process only (what
    ``callcenter serve`` needs; the web still reads the database outbox every ``outbox_poll_s`` so tools
    such as ``simulate-call --agent`` reach it); ``database``: publishers write to the outbox table and
    every web process polls it; ``redis``: Redis pub/sub at ``redis_url``.
    """

    bus: Literal["local", "database", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_channel: str = "callcenter.events"
    outbox_poll_s: float = Field(default=0.1, gt=0, le=10)
    outbox_keep_s: int = Field(default=600, ge=10)  # outbox rows older than this are deleted
    heartbeat_s: float = Field(default=15.0, gt=0, le=120)  # SSE comment line, keeps proxies open
    stream_max_s: int = Field(default=300, ge=1)  # the browser reconnects (Last-Event-ID) after this
    max_streams: int = Field(default=2000, ge=1)  # SSE connections per web process
    wrapup_window_min: int = Field(default=10, ge=1)
    wrapup_categories: tuple[str, ...] = DEFAULT_WRAPUP_CATEGORIES
    shifts: tuple[ShiftTimes, ...] = DEFAULT_SHIFTS
    late_grace_min: int = Field(default=0, ge=0, le=120)
    early_login_min: int = Field(default=60, ge=0, le=240)  # a login this early belongs to the next shift
    # The Asterisk queue member of an agent whose extension is a bare number (QueuePause on presence).
    member_interface: str = "PJSIP/{extension}"

    @field_validator("shifts")
    @classmethod
    def _unique_shifts(cls, value: tuple[ShiftTimes, ...]) -> tuple[ShiftTimes, ...]:
        codes = [shift.code for shift in value]
        if not value or len(set(codes)) != len(codes):
            raise ValueError("give at least one shift, with unique codes")
        return value

    @field_validator("wrapup_categories")
    @classmethod
    def _some_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not item or len(item) > 32 for item in value):
            raise ValueError("give at least one wrap-up category, each 1-32 characters")
        return value


class QA(Section):
    """QA spot-checks (REQUIREMENTS E50–57): how samples are drawn and handed out, and the dispute rules.

    ``mode`` ``count`` draws ``per_stratum`` calls per agent × queue and period; ``rate`` draws
    ``floor(rate × calls)`` of each stratum. Every agent with eligible calls gets ``min_per_agent``.
    Complaint-queue calls and calls followed by a repeat contact are drawn with a higher weight.
    """

    mode: Literal["count", "rate"] = "count"
    per_stratum: int = Field(default=1, ge=0, le=1000)
    rate: float = Field(default=0.05, ge=0, le=1)
    min_per_agent: int = Field(default=1, ge=0, le=100)
    min_talk_s: int = Field(default=30, ge=0)
    complaint_queues: tuple[str, ...] = ("complaint",)
    complaint_weight: float = Field(default=2.0, ge=1, le=100)
    repeat_contact_days: int = Field(default=7, ge=0, le=90)
    repeat_contact_weight: float = Field(default=2.0, ge=1, le=100)
    # The daily job draws the local day that ended ``lag_days`` ago (1: yesterday).
    lag_days: int = Field(default=1, ge=1, le=30)
    evaluator_daily_cap: int = Field(default=20, ge=1, le=1000)
    dispute_window_days: int = Field(default=7, ge=0, le=90)
    max_disputes: int = Field(default=1, ge=0, le=10)
    # Who re-scores a dispute when no other evaluator may (all scored it, or none is active): the
    # QA lead's username. Empty: such a dispute is refused rather than left without a re-scorer.
    lead_username: str = Field(default="", max_length=64)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class Dialler(Section):
    """Outbound callback campaigns and the dialler (requirements D39–D49).

    ``window_*`` is the calling window in the callee's local time (default: the hotline hours);
    ``backoff_minutes`` is the wait before attempt 2, 3 … (the last value repeats).
    """

    channel: Literal["auto", "asterisk", "twilio"] = "auto"  # auto: Twilio if configured, else AMI
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_minutes: tuple[int, ...] = (30, 120)
    lockout_hours: int = Field(default=72, ge=0)  # after an abandoned outbound call
    ring_timeout_s: int = Field(default=30, ge=15, le=120)
    calls_per_minute: float = Field(default=10.0, gt=0, le=100_000)  # callbacks outside campaigns
    max_concurrent: int = Field(default=5, ge=1, le=10_000)
    # Empty: the hotline hours of the day ([hours], D49: "the same business-hours setting").
    window_start: time | None = None
    window_end: time | None = None
    skip_holidays: bool = True  # no campaign calls on statutory holidays (callbacks owed still go)
    ordinary_due_hours: int = Field(default=24, ge=1)  # ordinary callback: due within 24 h
    lease_seconds: float = Field(default=15.0, ge=1.0)  # leader lease of the scheduler
    resolve_after_s: float = Field(default=60.0, ge=0)  # ask the channel about a call with no status
    in_doubt_after_s: float = Field(default=120.0, ge=1)  # a dial with no outcome after this is in doubt
    not_placed_retry_s: float = Field(default=60.0, ge=0)  # a dial that never left (AMI down…): retry after
    long_call_minutes: int = Field(default=5, ge=1)  # flagged in the campaign report (D48)
    # Roles whose holders take callback tasks (allocation, opening an unowned task); leaders always can.
    callback_roles: tuple[str, ...] = ("callback_specialist",)
    # Queue abandons (A9): the sweep waits this long for the caller to call again, and looks this far back.
    abandon_grace_minutes: int = Field(default=2, ge=0, le=60)
    abandon_lookback_hours: int = Field(default=24, ge=1, le=24 * 14)

    @field_validator("callback_roles")
    @classmethod
    def _known_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from callcenter.models.user import ROLES  # noqa: PLC0415 - the models import settings' siblings

        unknown = sorted(set(value) - set(ROLES))
        if unknown or not value:
            raise ValueError(f"callback_roles: give known roles (unknown: {unknown})")
        return value

    @field_validator("window_end")
    @classmethod
    def _window_order(cls, value: time | None, info: Any) -> time | None:
        start = info.data.get("window_start")
        if (start is None) != (value is None):
            raise ValueError("set both window_start and window_end, or neither")
        if start is not None and value is not None and value <= start:
            raise ValueError("window_end must be later than window_start")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    organisation: Organisation = Organisation()
    hours: Hours = Hours()
    calendar: Calendar = Calendar()
    database: Database = Database()
    ivr: Ivr = Ivr()
    agi: Agi = Agi()
    ami: Ami = Ami()
    twilio: Twilio = Twilio()
    web: Web = Web()
    storage: Storage = Storage()
    recordings: Recordings = Recordings()
    callers: CallerRules = CallerRules()
    cases: CaseRules = CaseRules()
    accounts: Accounts = Accounts()
    console: Console = Console()
    qa: QA = QA()
    dialler: Dialler = Dialler()
    departments: tuple[Department, ...] = DEFAULT_DEPARTMENTS

    @field_validator("departments")
    @classmethod
    def _unique_departments(cls, value: tuple[Department, ...]) -> tuple[Department, ...]:
        codes = [department.code for department in value]
        if len(set(codes)) != len(codes):
            raise ValueError("department codes must be unique")
        return value

    def department(self, code: str) -> Department:
        for department in self.departments:
            if department.code == code:
                return department
        raise KeyError(code)

    # The folder relative paths are resolved against (the settings file's folder).
    base_dir: str = "."

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first (highest), then values handed in (the parsed TOML file).
        return (env_settings, init_settings)

    @property
    def zone(self) -> ZoneInfo:
        return self.organisation.zone

    def path(self, relative: str) -> Path:
        """Resolve a configured path against the settings file's folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]).resolve())
        return url


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
    for section, key in sorted(SECRET_KEYS):
        if isinstance(data.get(section), dict) and key in data[section]:
            env_name = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            raise ConfigurationError(
                f"{path}: [{section}] {key} is a secret; set it in the environment as {env_name}"
            )
    if "base_dir" in data:
        raise ConfigurationError(f"{path}: base_dir is derived from the file's location")
    return data


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid settings ({source}):"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown setting")
        else:
            lines.append(f"  {where}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def load_settings(
    path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Load settings from ``path`` (or ``$CALLCENTER_SETTINGS``, or ``./settings.toml``).

    ``overrides`` are merged over the file's values (sections merge key by key); the environment
    still wins over both. Raises :class:`ConfigurationError` naming the offending key.
    """
    chosen = Path(path or os.environ.get(SETTINGS_FILE_ENV) or DEFAULT_SETTINGS_FILE)
    data: dict[str, Any] = {}
    if chosen.exists():
        data = _read_toml(chosen)
    elif path is not None or SETTINGS_FILE_ENV in os.environ:
        raise ConfigurationError(f"settings file {chosen} does not exist")
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    data["base_dir"] = str(chosen.resolve().parent)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, str(chosen))) from exc
