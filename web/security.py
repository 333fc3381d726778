"""Cookie settings and the headers every response carries."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from callcenter.exceptions import ConfigurationError
from callcenter.settings import Settings

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its signer built once per secret key instead of on every request."""

    _signer: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._signer
        if cached is None or cached[0] != key:
            cached = self._signer = (key, super().get_signing_serializer(app))
        return cached[1]


def is_https(settings: Settings) -> bool:
    return settings.twilio.public_base_url.lower().startswith("https://")


def configure_session(app: Flask, settings: Settings) -> None:
    """Signed-cookie session: HttpOnly, SameSite=Lax, Secure behind https, expiring after the shift."""
    if settings.web.secret_key is None:
        raise ConfigurationError(
            "the web needs a secret key: set CALLCENTER_WEB__SECRET_KEY in the environment "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    app.session_interface = SessionInterface()
    app.config.update(
        SECRET_KEY=settings.web.secret_key.get_secret_value(),
        SESSION_COOKIE_NAME="callcenter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=is_https(settings),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.web.session_minutes),
        # A page left open for the whole shift can still post its forms (the token is per session anyway).
        WTF_CSRF_TIME_LIMIT=settings.web.session_minutes * 60,
    )


def install_headers(app: Flask, settings: Settings) -> None:
    secure = is_https(settings)

    @app.after_request
    def _add_security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":
            # Pages show personal data (names, numbers): keep them out of shared and browser caches.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
