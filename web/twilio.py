"""Twilio's webhooks under ``/twilio/``: signed by Twilio instead of a login and a CSRF token.

They are served by an application of their own, mounted in front of the staff application
(``mount``): Twilio's servers send no cookie, sign every request and never render a page, so none of
the staff application's per-request machinery (session, login guard, CSRF, language choice, page
headers, HTML error pages) applies to them, and none of it runs.

Every request must carry a valid ``X-Twilio-Signature``, computed by twilio's ``RequestValidator``
over the URL Twilio requested (rebuilt from ``twilio.public_base_url``: a proxy in front of us changes
scheme and host, so the request's own URL cannot be trusted) and the posted form. A missing or bad
signature gets 403 and a log line. The use cases live in ``callcenter.voice.twilio.hotline``; this
module only checks, parses and answers (``text/xml``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator, get_signature_algorithm
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from callcenter.voice.twilio.hotline import BadWebhook, TwilioVoice
from recordings.twilio import valid_recording_sid
from web.limits import bound_bodies, parse_id, refuse_nul, use_id_converter

log = logging.getLogger(__name__)

EXTENSION_KEY = "callcenter.twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
# Where the webhooks are mounted in front of the staff application.
MOUNT = "/twilio"
DEFAULT_MAX_BODY = 1024 * 1024  # web.max_request_kb's default
BODY_HASH = "bodySHA256"
# What the XML answers to Twilio carry (no page there for a browser to frame or run scripts in).
HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))

bp = Blueprint("twilio", __name__)


class TwilioWeb:
    """What the blueprint needs: the use cases, the validator and the public base URL."""

    def __init__(self, voice: TwilioVoice, auth_token: str, public_base_url: str) -> None:
        self.voice = voice
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    def valid(self, url: str, params: Any, signature: str, algorithm: str | None) -> bool:
        """Whether ``signature`` is Twilio's for this request.

        ``RequestValidator.validate`` always computes two HMACs (the URL with and without its port,
        as Twilio is inconsistent there). A form post signed over the URL exactly as we rebuilt it
        is valid with one; anything else gets the full check.
        """
        if isinstance(params, str) and BODY_HASH not in parse_qs(urlsplit(url).query):
            return False  # a JSON body is signed through its hash in the URL: none, nothing signed
        if not isinstance(params, str):
            try:
                expected = self.validator.compute_signature(url, params, algorithm)
            except ValueError:  # an algorithm this twilio release does not know: validate says so
                expected = ""
            if expected and hmac.compare_digest(expected, signature):
                return True
        return bool(self.validator.validate(url, params, signature, algorithm))

    def public_url(self) -> str:
        """The URL Twilio requested, as it knows it: our public base, the path and the raw query."""
        query = request.query_string.decode("latin-1")
        return f"{self.public_base_url}{_path()}" + (f"?{query}" if query else "")


def create_webhooks(twilio: TwilioWeb, *, max_body: int = DEFAULT_MAX_BODY) -> Flask:
    """The webhooks' own application (its paths relative to ``MOUNT``): bodies up to ``max_body``
    bytes (413 above), ids within ``MAX_ID``, no NUL bytes (400), a valid ``RecordingSid``."""
    app = Flask(__name__)
    use_id_converter(app)
    bound_bodies(app, max_body)
    refuse_nul(app)
    app.extensions[EXTENSION_KEY] = twilio
    app.register_blueprint(bp)
    app.after_request(_add_headers)
    return app


def mount(app: Flask, twilio: TwilioWeb, *, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Serve the webhooks under ``MOUNT`` in front of ``app``; ``app.extensions`` names them too."""
    app.extensions[EXTENSION_KEY] = twilio
    webhooks = create_webhooks(twilio, max_body=max_body)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {MOUNT: webhooks})  # type: ignore[method-assign]


def _add_headers(response: Response) -> Response:
    for name, value in HEADERS:
        response.headers.setdefault(name, value)
    return response


def _twilio() -> TwilioWeb:
    twilio = current_app.extensions[EXTENSION_KEY]
    assert isinstance(twilio, TwilioWeb)
    return twilio


@bp.before_request
def check_signature() -> ResponseReturnValue | None:
    twilio = _twilio()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    url = twilio.public_url()
    algorithm = get_signature_algorithm(request.headers.get(SETTINGS_HEADER))
    params: Any = request.form if request.mimetype != "application/json" else request.get_data(as_text=True)
    if signature and twilio.valid(url, params, signature, algorithm):
        _check_recording_sid()
        return None
    log.warning(
        "twilio: %s signature on %s %s from %s; refused",
        "bad" if signature else "missing",
        request.method,
        _path(),
        request.remote_addr,
    )
    abort(403)


def _check_recording_sid() -> None:
    """A ``RecordingSid`` names a file in our store: only Twilio's form (``RE`` + 32 hex) passes."""
    sid = request.form.get("RecordingSid", "") if request.mimetype != "application/json" else ""
    if sid and not valid_recording_sid(sid):
        log.warning(
            "twilio: %s %s with a malformed RecordingSid %r; refused", request.method, _path(), sid[:80]
        )
        abort(400)


def _path() -> str:
    """The request's path as Twilio requested it under our public base: the mount, then the route."""
    return f"{MOUNT}{request.path}"


def _xml(document: str, status: int = 200) -> Response:
    return Response(document, status=status, mimetype="text/xml")


def _form() -> dict[str, str]:
    return request.form.to_dict()


def _token() -> str:
    return request.args.get("s", "")


def _answer(handler: Callable[[], str]) -> Response:
    """Run a webhook that answers TwiML; a bad request is 400, a failure still routes the caller."""
    try:
        return _xml(handler())
    except BadWebhook as exc:
        log.warning("twilio: %s %s refused: %s", request.method, _path(), exc)
        abort(400)
    except Exception as exc:  # the caller is on the line: never leave them with an error message
        log.exception("twilio: %s failed; the caller goes to the default queue", _path())
        return _xml(_twilio().voice.fallback(_form(), exc))


@bp.post("/voice")
def voice() -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.incoming(_form()))


@bp.post("/gather/<node>")
def gather(node: str) -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.gather(node, _token(), _form()))


@bp.post("/recorded/<node>")
def recorded(node: str) -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.recorded(node, _token(), _form()))


@bp.post("/outbound/<int:task>")
def outbound(task: int) -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.outbound(task, _form()))


@bp.post("/queue/wait")
def queue_wait() -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.queue_wait(_token(), _form()))


@bp.post("/queue/callback")
def queue_callback() -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.queue_callback(_token(), _form()))


@bp.post("/queue/done")
def queue_done() -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.queue_done(_token(), _form()))


@bp.post("/agent")
def agent() -> ResponseReturnValue:
    return _answer(lambda: _twilio().voice.agent(_form()))


@bp.post("/dequeued")
def dequeued() -> ResponseReturnValue:
    agent_id = parse_id(request.args.get("agent"))
    if agent_id is None:
        abort(400)
    return _answer(lambda: _twilio().voice.dequeued(agent_id, request.args.get("q", ""), _form()))


@bp.post("/status")
def status() -> ResponseReturnValue:
    try:
        _twilio().voice.status(_form())
    except BadWebhook as exc:
        log.warning("twilio: status callback refused: %s", exc)
        abort(400)
    return Response(status=204)


@bp.post("/recording")
def recording() -> ResponseReturnValue:
    try:
        _twilio().voice.recording(request.args.get("kind", "call"), _form())
    except BadWebhook as exc:
        log.warning("twilio: recording callback refused: %s", exc)
        abort(400)
    return Response(status=204)
