"""The ``callcenter`` command: the composition root of every process.

This is the one module of the core allowed to import the shells (web/, scheduler/): it starts them.
They are imported inside the commands that run them, so the library code of the core never depends
on them (tests/test_architecture.py checks the rule).
"""

from __future__ import annotations

import logging
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from callcenter.db import Database
from callcenter.exceptions import CallcenterError, ConfigurationError
from callcenter.runtime import settle
from callcenter.settings import Settings, load_settings

log = logging.getLogger("callcenter")
ALWAYS_OPEN = "--always-open"  # serve: the hotline open around the clock


def utc_now() -> datetime:
    """The clock of every process: the only place that reads the time."""
    return datetime.now(UTC)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The dialler runs every second: APScheduler's "Running job … executed successfully" at INFO
    # would bury everything else. Its warnings and errors (missed runs, a job that raised) still show.
    logging.getLogger("apscheduler.executors.default").setLevel(max(logging.WARNING, logging.root.level))


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The process's database, closed when the command ends."""
    db = Database(settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size)
    try:
        yield db
    finally:
        db.dispose()


@click.group()
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False), help="settings.toml to use")
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def cli(ctx: click.Context, settings_path: str | None, log_level: str) -> None:
    """Customer-service hotline: an IVR on Asterisk (FastAGI) with every call logged and shown on the web."""
    _setup_logging(log_level)
    ctx.ensure_object(dict)
    try:
        ctx.obj["settings"] = load_settings(settings_path)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from callcenter.db.migrate import upgrade

    settings = _settings(ctx)
    upgrade(settings.database_url)
    click.echo(f"database is up to date: {_display_url(settings.database_url)}")


@cli.command("init-db")
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Alias of ``migrate``."""
    ctx.invoke(migrate)


@cli.command("check-flows")
@click.pass_context
def check_flows(ctx: click.Context) -> None:
    """Load and validate every IVR flow file."""
    from callcenter.ivr.flow import load_flows

    settings = _settings(ctx)
    try:
        flows = load_flows(settings.path(settings.ivr.flows_dir))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, flow in flows.items():
        click.echo(f"{name} v{flow.version}: {len(flow.nodes)} nodes, {len(flow.prompts)} prompts — ok")


@cli.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="repeat for several roles")
@click.option("--name", "display_name", default="", help="display name")
@click.password_option(help="asked for when not given")
@click.pass_context
def create_user(
    ctx: click.Context, username: str, roles: tuple[str, ...], display_name: str, password: str
) -> None:
    """Create a web account."""
    from callcenter.services.users import create_user as create

    settings = _settings(ctx)
    try:
        with _database(settings) as db, db.transaction() as session:
            create(
                session,
                username,
                password,
                roles,
                now=utc_now(),
                display_name=display_name,
                min_password_length=settings.accounts.min_password_length,
            )
    except CallcenterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created user {username} with roles {', '.join(sorted(roles))}")


@cli.command("seed-demo")
@click.pass_context
def seed_demo(ctx: click.Context) -> None:
    """Load the demo: queues, agents, the other desks' logins, callers (one VIP), an admin; a few days
    of calls with recordings; cases, a campaign, QA samples and a handover. Prints the logins."""
    from callcenter.services.demo import load_demo
    from recordings.verify import Policy, verify_all

    settings = _settings(ctx)
    logins_file = settings.path(settings.storage.var_dir) / "demo-logins.txt"
    admin_password = _demo_admin_password(logins_file)
    policy = Policy.from_settings(settings)
    with _database(settings) as db:
        loaded = load_demo(
            settings,
            db,
            utc_now(),
            admin_password=admin_password,
            verify=lambda db, folder, now: verify_all(db, folder, now, policy),
        )
    lines = [f"{login.username} / {login.password}" for login in loaded.logins]
    logins_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logins_file.chmod(0o600)
    click.echo("demo data loaded; logins (also in " + str(logins_file) + "):")
    for line in lines:
        click.echo("  " + line)
    folder = settings.path(settings.storage.monitor_dir) / "demo"
    sound = (
        "spoken with espeak-ng"
        if loaded.audio_source == "espeak-ng"
        else "synthetic tones: espeak-ng is not installed (apt-get install espeak-ng)"
    )
    desks = loaded.desks
    click.echo(f"demo calls placed: {loaded.calls_placed}; recordings in {folder} ({sound})")
    click.echo(
        f"desks: {desks.cases} cases, {desks.campaign_tasks} campaign tasks, {desks.qa_sampled} QA samples"
        f" and {int(desks.handover)} handover added (nothing is added twice)"
    )


def _demo_admin_password(logins_file: Path) -> str:
    if logins_file.exists():
        for line in logins_file.read_text(encoding="utf-8").splitlines():
            name, _, password = line.partition(" / ")
            if name == "admin" and password:
                return password
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    return secrets.token_urlsafe(9)


@cli.command("replay-spool")
@click.pass_context
def replay_spool(ctx: click.Context) -> None:
    """Apply call reports spooled while the database was unreachable."""
    from callcenter.services.journal import recorder_for

    settings = _settings(ctx)
    with _database(settings) as db:
        result = recorder_for(settings, db, utc_now).replay()
    click.echo(f"applied {result.applied}, unreadable {result.failed}, still waiting {result.remaining}")
    if result.remaining:
        sys.exit(1)


@cli.command("render-prompts")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="default: settings storage.sounds_dir"
)
@click.option("--force", is_flag=True, help="render every prompt, changed or not")
@click.option(
    "--voice", "voices", multiple=True, help="LANG=VOICE (espeak-ng voice), e.g. zh=cmn; repeatable"
)
@click.option("--speed", type=click.IntRange(80, 450), default=None, help="words per minute (default 150)")
@click.pass_context
def render_prompts(
    ctx: click.Context, out_dir: str | None, force: bool, voices: tuple[str, ...], speed: int | None
) -> None:
    """Render every flow's prompts to 8 kHz WAV files for Asterisk (espeak-ng)."""
    from callcenter.ivr.flow import load_flows
    from callcenter.voice import prompts

    settings = _settings(ctx)
    chosen = dict(prompts.DEFAULT_VOICES)
    for item in voices:
        language, sep, voice = item.partition("=")
        if not sep or not language or not voice:
            raise click.BadParameter(f"{item!r}: expected LANG=VOICE", param_hint="--voice")
        chosen[language] = voice
    target = Path(out_dir) if out_dir else settings.path(settings.storage.sounds_dir)
    try:
        flows = load_flows(settings.path(settings.ivr.flows_dir))
        result = prompts.render_prompts(
            flows.values(),
            target,
            voices=chosen,
            speed=speed or prompts.DEFAULT_SPEED,
            force=force,
            progress=lambda job, rendered: log.debug("%s %s", "rendered" if rendered else "kept", job),
        )
    except CallcenterError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in result.rendered:
        click.echo(f"  rendered {path}")
    click.echo(
        f"{len(result.rendered)} rendered, {len(result.unchanged)} unchanged, in {target}"
        + (f" ({result.audio_s:.1f} s of audio in {result.seconds:.1f} s)" if result.rendered else "")
    )


@cli.group("recordings")
def recordings_group() -> None:
    """Check Asterisk's recordings (monitor folder) against the contact record."""


@recordings_group.command("verify")
@click.option("--batch", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--recheck-missing", is_flag=True, help="look again for files marked missing")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.pass_context
def recordings_verify(ctx: click.Context, batch: int, recheck_missing: bool, as_json: bool) -> None:
    """Check the recordings of ended calls: file present, duration, sha256."""
    import dataclasses
    import json

    from recordings.media import MonitorFolderMissing
    from recordings.verify import verify_recordings

    settings = _settings(ctx)
    with _database(settings) as db:
        try:
            result = verify_recordings(settings, db, utc_now(), batch=batch, recheck_missing=recheck_missing)
        except MonitorFolderMissing as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result)))
    else:
        click.echo(f"{result} ({result.bytes / 1e6:.1f} MB read in {result.seconds:.2f} s)")


@recordings_group.command("reconcile")
@click.option(
    "--days", type=click.IntRange(0), default=7, show_default=True, help="calls of the last N days; 0: all"
)
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="entries listed per problem"
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.pass_context
def recordings_reconcile(ctx: click.Context, days: int, limit: int, as_json: bool) -> None:
    """Report orphan files, answered calls without a recording or with an empty or short one, missing
    and invalid recordings, and recordings of calls that never ended.

    Exits with 1 when there is a problem.
    """
    import json
    from datetime import timedelta

    from recordings.media import MonitorFolderMissing
    from recordings.reconcile import ShortRule, reconcile

    settings = _settings(ctx)
    now = utc_now()
    folder = settings.path(settings.storage.monitor_dir)
    short = ShortRule(settings.recordings.short_ratio, settings.recordings.short_tolerance_s)
    with _database(settings) as db:
        try:
            report = reconcile(
                db,
                folder,
                now,
                since=now - timedelta(days=days) if days else None,
                short=short,
                limit=limit,
            )
        except MonitorFolderMissing as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(f"monitor folder {folder}" + (f", calls of the last {days} days" if days else ""))
        click.echo(f"orphan files (no recording names them): {report.orphan_count}")
        for path in report.orphans:
            click.echo(f"  {path}")
        click.echo(f"answered calls without a recording: {report.unrecorded_count}")
        for call in report.unrecorded_calls:
            answered = call.answered_at.astimezone(settings.zone)
            click.echo(
                f"  call {call.call_id} (linkedid {call.external_id}) answered {answered:%Y-%m-%d %H:%M}"
            )
        click.echo(
            f"answered calls recorded empty or short: {report.short_count}"
            f" (and {report.empty_unanswered} empty recordings of calls never answered: expected)"
        )
        for short_call in report.short:
            click.echo(
                f"  call {short_call.call_id} (linkedid {short_call.external_id}):"
                f" {short_call.recorded_s:g} s recorded, talked {short_call.talk_s} s"
            )
        click.echo(
            f"recordings missing: {report.missing_count}"
            f" (and {report.missing_unanswered} of calls never answered: expected)"
        )
        for rec in report.missing:
            click.echo(f"  recording {rec.recording_id} of call {rec.call_id}: {rec.uri}: {rec.problem}")
        click.echo(f"recordings invalid: {report.invalid_count}")
        for rec in report.invalid:
            click.echo(f"  recording {rec.recording_id} of call {rec.call_id}: {rec.uri}: {rec.problem}")
        click.echo(f"recordings of calls that never ended: {report.not_ended_count}")
        for rec in report.not_ended:
            click.echo(f"  recording {rec.recording_id} of call {rec.call_id}: {rec.uri}")
        click.echo(f"not checked yet: {report.pending}")
        click.echo(f"problems: {report.problems}")
    if report.problems:
        sys.exit(1)


@cli.command("simulate-call")
@click.option("--from", "caller", default="+8613800138000", show_default=True, help="caller number")
@click.option(
    "--name",
    default=None,
    help="caller name as the network sends it (default: the name in the customer archive, if any)",
)
@click.option("--digits", default=None, help="the key pressed at the menu, e.g. 2")
@click.option("--inputs", default=None, help="comma-separated: keys, 'timeout', 'hangup'; '!2' barges in")
@click.option("--host", default=None, help="FastAGI host (default: settings agi.host)")
@click.option("--port", type=int, default=None, help="FastAGI port (default: settings agi.port)")
@click.option(
    "--script",
    default="hotline",
    show_default=True,
    help="AGI script: hotline, after-hours, queue-callback, outbound",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="a channel variable the dialplan set before AGI(), e.g. CC_FLOW_ENTRY=survey (repeatable)",
)
@click.option("--verbose", "-v", is_flag=True, help="print every AGI command and reply")
@click.option(
    "--agent",
    default=None,
    metavar="EXTENSION",
    help="then ring this agent's extension and answer: the card pops in the agent's console",
)
@click.pass_context
def simulate_call(
    ctx: click.Context,
    caller: str,
    name: str | None,
    digits: str | None,
    inputs: str | None,
    host: str | None,
    port: int | None,
    script: str,
    variables: tuple[str, ...],
    verbose: bool,
    agent: str | None,
) -> None:
    """Play a call against the FastAGI server as Asterisk would, and print the route."""
    from callcenter.voice.agi.simulate import CallScript, parse_inputs
    from callcenter.voice.agi.simulate import simulate_call as simulate

    settings = _settings(ctx)
    channel_vars = dict(item.partition("=")[::2] for item in variables)
    if any(not key for key in channel_vars):
        raise click.BadParameter("use NAME=VALUE", param_hint="--var")
    if name is None:
        name = _archive_name(settings, caller)
    call = CallScript(
        caller_number=caller,
        caller_name=name,
        inputs=parse_inputs(digits, inputs),
        script=script,
        channel_vars=channel_vars,
    )
    try:
        result = simulate(host or settings.agi.host, port or settings.agi.port, call)
    except CallcenterError as exc:
        raise click.ClickException(str(exc)) from exc
    if verbose:
        for command, reply in result.transcript:
            click.echo(f"  > {command}\n  < {reply}")
    if result.hung_up:
        if any(prompt.endswith("/closed") for prompt in result.prompts):
            click.echo(
                "the hotline is closed now (settings [hours]): the caller heard the after-hours message"
                f" and a callback was noted (linkedid {result.linkedid})"
            )
            click.echo(
                f"to try the menu anyway: callcenter serve {ALWAYS_OPEN} (make run SERVE_ARGS={ALWAYS_OPEN})"
            )
        else:
            click.echo(f"caller hung up in the IVR (linkedid {result.linkedid})")
        if agent:
            click.echo("the call did not reach a queue (outside hotline hours, or hung up): no agent rung")
        return
    click.echo(
        f"route: queue={result.queue or '-'} branch={result.variables.get('CC_BRANCH', '-')} "
        f"priority={result.variables.get('CC_PRIORITY', '0')}"
    )
    click.echo(f"call id (CC_CALL_ID): {result.call_id or '-'} (linkedid {result.linkedid})")
    if settings.web.port:
        click.echo(
            f"see it at http://{settings.web.host}:{settings.web.port}/calls/asterisk/{result.linkedid}"
        )
    if agent:
        _ring_agent(
            settings, agent, result.linkedid, result.queue or settings.ivr.default_queue, caller, name
        )


def _archive_name(settings: Settings, caller: str) -> str:
    """The caller's name in the customer archive (the demo callers' names if the database cannot be
    read), as a PBX's CNAM lookup would send it; "" for a stranger."""
    from sqlalchemy.exc import SQLAlchemyError

    from callcenter.phone import normalise
    from callcenter.services.callers import find_caller
    from callcenter.services.demo.people import CALLERS

    e164 = normalise(caller, settings.organisation.phone_region).e164
    if e164 is None:
        return ""
    try:
        with _database(settings) as db, db.read() as session:
            found = find_caller(session, e164)
            return found.name if found is not None else ""
    except SQLAlchemyError:
        return next((name for number, name, _tier in CALLERS if number == e164), "")


def _ring_agent(
    settings: Settings, extension: str, linkedid: str, queue: str, caller: str, name: str
) -> None:
    """What Asterisk's queue reports when it rings the agent and the agent answers (AMI events), on
    the contact record and on the bus other processes hear (database outbox, or Redis)."""
    from callcenter.events import outside_publisher
    from callcenter.services.agent_states import CallPresence
    from callcenter.voice.ami.ringing import Ring, ring_agent
    from callcenter.voice.ami.states import AgentStates

    with _database(settings) as db:
        states = AgentStates(
            CallPresence(db, settings.console, settings.zone, utc_now),
            member_template=settings.console.member_interface,
        )
        call_id = ring_agent(
            Ring(linkedid, extension, queue, caller, name),
            db,
            outside_publisher(settings, db, utc_now),
            utc_now,
            region=settings.organisation.phone_region,
            monitor_dir=settings.storage.asterisk_monitor_dir,
            on_call_state=states,
        )
    click.echo(f"rang agent {extension} and answered: call {call_id} (screen-pop sent)")


@cli.command()
@click.option("--port", type=int, default=None)
@click.pass_context
def agi(ctx: click.Context, port: int | None) -> None:
    """Run the FastAGI server (Asterisk's AGI(agi://HOST:4573/hotline))."""
    from callcenter.events import LocalBus, publisher_for
    from callcenter.voice.agi.main import build_server
    from callcenter.voice.ami.main import build_ami, running_ami

    settings = _settings(ctx)
    with _database(settings) as db:
        server = _fail_on_config(lambda: build_server(settings, db, utc_now, port=port))
        settle(settings.organisation.phone_region)
        bus = publisher_for(settings, db, LocalBus(), utc_now)  # screen-pops for the web processes
        ami = _fail_on_config(lambda: build_ami(settings, db, utc_now, bus=bus))
        click.echo(f"FastAGI listening on {settings.agi.host}:{server.port}")
        if ami is not None:
            click.echo(f"AMI listener connecting to {settings.ami.host}:{settings.ami.port}")
        _stop_on_signals(server.shutdown)
        try:
            with running_ami(ami):  # stopped (logoff, close) once SIGTERM/SIGINT stop the server
                server.serve_forever()
        finally:
            server.server_close()  # waits for the sessions, then the recorder writes what they reported


@cli.command()
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=16, show_default=True)
@click.pass_context
def web(ctx: click.Context, workers: int, threads: int) -> None:
    """Run the web application under gunicorn (threaded workers)."""
    from gunicorn.app.base import BaseApplication

    from web import create_app

    settings = _settings(ctx)
    app = _fail_on_config(lambda: create_app(settings))
    settle(settings.organisation.phone_region)  # before gunicorn forks its workers

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.web.host}:{settings.web.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return app

    Gunicorn().run()


@cli.command("scheduler")
@click.pass_context
def scheduler_command(ctx: click.Context) -> None:
    """Run the scheduler (APScheduler jobs) in the foreground; only the lease holder runs jobs."""
    from scheduler.leader import LeaderScheduler

    settings = _settings(ctx)
    stop = threading.Event()
    _stop_on_signals(stop.set)
    with _database(settings) as db:
        scheduler = LeaderScheduler(settings, db, utc_now)
        settle(settings.organisation.phone_region)
        scheduler.start()
        click.echo(f"scheduler started as {scheduler.lease.holder}: runs the jobs while it holds the lease")
        stop.wait()
        scheduler.shutdown()


@cli.command()
@click.option(
    ALWAYS_OPEN,
    is_flag=True,
    help="the hotline open around the clock, whatever settings [hours] say (to try the demo at night)",
)
@click.pass_context
def serve(ctx: click.Context, always_open: bool) -> None:
    """All in one: web, FastAGI server and scheduler in one process (what `make run` starts)."""
    from werkzeug.serving import make_server

    from callcenter.events import LocalBus, publisher_for
    from callcenter.voice.agi.main import build_server
    from callcenter.voice.agi.server import RunningServer
    from callcenter.voice.ami.main import build_ami, running_ami
    from scheduler.leader import LeaderScheduler
    from web import create_app

    settings = _always_open(_settings(ctx)) if always_open else _settings(ctx)
    with _database(settings) as db:
        bus = LocalBus()  # one bus: the AMI listener's screen-pops reach the web in this process
        app = _fail_on_config(lambda: create_app(settings, db, bus=bus))
        agi_server = _fail_on_config(lambda: build_server(settings, db, utc_now))
        publisher = publisher_for(settings, db, bus, utc_now)
        ami = _fail_on_config(lambda: build_ami(settings, db, utc_now, bus=publisher))
        http = make_server(settings.web.host, settings.web.port, app, threaded=True)
        scheduler = LeaderScheduler(settings, db, utc_now)
        _stop_on_signals(http.shutdown)
        with RunningServer(agi_server), running_ami(ami):
            scheduler.start()
            _banner(settings, agi_server.port, always_open=always_open)
            try:
                http.serve_forever()
            finally:
                scheduler.shutdown(wait=False)


def _always_open(settings: Settings) -> Settings:
    """The settings with the hotline open every day, 00:00 to 23:59:59."""
    from datetime import time

    from callcenter.settings import Hours, OpeningTimes

    day = OpeningTimes(open=time(0, 0), close=time(23, 59, 59))
    hours = Hours(open=day.open, close=day.close, rest_days=day, holidays=day)
    return settings.model_copy(update={"hours": hours})


def _banner(settings: Settings, agi_port: int, *, always_open: bool = False) -> None:
    logins = settings.path(settings.storage.var_dir) / "demo-logins.txt"
    hours = settings.hours
    click.echo("")
    click.echo(f"  web:      http://{settings.web.host}:{settings.web.port}/")
    click.echo(f"  FastAGI:  agi://{settings.agi.host}:{agi_port}/hotline")
    if always_open:
        click.echo(f"  hours:    open around the clock ({ALWAYS_OPEN})")
    else:
        click.echo(
            f"  hours:    {hours.open:%H:%M}–{hours.close:%H:%M} {settings.organisation.timezone}"
            f" on working days (settings [hours]; {ALWAYS_OPEN} to try the menu outside them)"
        )
    if logins.exists():
        first = logins.read_text(encoding="utf-8").splitlines()[0]
        click.echo(f"  login:    {first}   (all demo logins: {logins})")
    click.echo("  try:      .venv/bin/callcenter simulate-call --from +8613800138000 --digits 2")
    click.echo("")


def _fail_on_config(build: Any) -> Any:
    try:
        return build()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def _stop_on_signals(stop: Any) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _display_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        if ":" in credentials:
            return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


# --- QA spot-checks --------------------------------------------------------------------------------


@cli.group("qa")
def qa_group() -> None:
    """QA spot-checks: draw samples of recorded calls, check a draw can be reproduced."""


@qa_group.command("draw")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="first local day")
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="last local day (inclusive)"
)
@click.option("--seed", type=click.IntRange(0, 2**62), default=None, help="default: a fresh random seed")
@click.pass_context
def qa_draw(ctx: click.Context, start: datetime | None, end: datetime | None, seed: int | None) -> None:
    """Draw the QA sample of a period (default: the day the daily job draws). A period drawn before
    is not drawn again; unassigned samples are handed out."""
    from datetime import timedelta

    from callcenter.services.qa_jobs import draw_period
    from callcenter.services.qa_sampling import day_to_draw

    settings = _settings(ctx)
    now = utc_now()
    first = start.date() if start else day_to_draw(now, settings.zone, settings.qa.lag_days)
    last = end.date() if end else first
    if last < first:
        raise click.ClickException("--to is before --from")
    with _database(settings) as db:
        outcome = draw_period(
            settings, db, now, start=first, end=last + timedelta(days=1), seed=seed, trigger="cli"
        )
    click.echo(str(outcome))


@qa_group.command("redraw")
@click.argument("run_id", type=int)
@click.pass_context
def qa_redraw(ctx: click.Context, run_id: int) -> None:
    """Draw a stored run again from its seed and parameters; exit 1 if the sample differs."""
    from callcenter.services.qa_sampling import redraw

    settings = _settings(ctx)
    with _database(settings) as db, db.read() as session:
        try:
            result = redraw(session, run_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"population unchanged: {result.same_population}; same sample: {result.same_sample}")
    click.echo(f"stored:  {result.stored}")
    click.echo(f"redrawn: {result.redrawn}")
    if not result.same_sample:
        sys.exit(1)


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
