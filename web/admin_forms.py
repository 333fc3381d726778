"""The admin pages' forms, their choices and the translated messages of the services' rule codes."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from callcenter.models.agent import SKILL_LEVELS
from callcenter.models.user import ROLES
from callcenter.services.admin import AdminError
from web import labels

# One table per code, in web/labels.py (the audit page and the role names use the same).
ROLE_LABELS: Mapping[str, LazyString] = labels.ROLES
SKILL_LABELS: Mapping[str, LazyString] = labels.SKILL_LEVELS
LOCALE_CHOICES = [
    SelectChoice("", _l("Organisation default")),
    SelectChoice("zh", "中文"),
    SelectChoice("en", "English"),
]

# Messages of AdminError codes; (field, code) first, then the code alone.
MESSAGES: Mapping[tuple[str, str] | str, LazyString] = {
    ("username", "taken"): _l("This username is taken."),
    ("username", "invalid"): _l("Usernames are 1 to 64 characters."),
    ("extension", "format"): _l("Letters, digits and / _ @ . : + - only, e.g. PJSIP/1001."),
    ("twilio_identity", "format"): _l("Letters, digits and _ . @ + - only."),
    ("name", "format"): _l("Lower-case letters, digits, _ and -, starting with a letter."),
    ("department", "required"): _l("Department handlers and heads need a department."),
    ("active", "self_deactivate"): _l("You cannot deactivate your own account."),
    ("roles", "self_admin"): _l("You cannot take the admin role from yourself."),
    ("roles", "last_admin"): _l("At least one active administrator must remain."),
    ("roles", "required"): _l("Choose at least one role."),
    ("user_id", "taken"): _l("This account is already linked to another agent."),
    "taken": _l("Already used by another record."),
    "too_short": _l("At least %(min_length)d characters."),
    "too_long": _l("At most 256 characters."),
    "same_as_username": _l("The password must not be the username."),
    "length": _l("Enter 1 to %(max)d characters."),
    "unknown": _l("Not a valid choice."),
    "not_found": _l("It no longer exists; reload the page."),
    "format": _l("Not in the expected format."),
}


def error_message(error: AdminError) -> str:
    text = MESSAGES.get((error.field, error.code)) or MESSAGES.get(error.code) or _l("Not accepted.")
    return str(text) % error.params if "%(" in str(text) else str(text)


def show_error(form: FlaskForm, error: AdminError) -> None:
    """Put the service's refusal under the field it belongs to (or above the form)."""
    field = form._fields.get(error.field)
    if field is None:
        form.form_errors.append(error_message(error))
    else:
        field.errors = [*field.errors, error_message(error)]


class CheckboxesField(SelectMultipleField):  # type: ignore[misc]
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def optional_text(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return stripped or None


class AccountForm(FlaskForm):  # type: ignore[misc]
    display_name = StringField(_l("Display name"), validators=[DataRequired(), Length(max=64)])
    roles = CheckboxesField(_l("Roles"), choices=[SelectChoice(role, ROLE_LABELS[role]) for role in ROLES])
    department = SelectField(_l("Department"), choices=[], default="")
    is_department_head = BooleanField(_l("Head of the department (approves solutions)"))
    locale = SelectField(_l("Language"), choices=LOCALE_CHOICES, default="")
    active = BooleanField(_l("Active (may sign in)"), default=True)


class NewAccountForm(AccountForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        _l("Repeat the password"), validators=[EqualTo("password", message=_l("The passwords differ."))]
    )


class PasswordForm(FlaskForm):  # type: ignore[misc]
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        _l("Repeat the password"), validators=[EqualTo("password", message=_l("The passwords differ."))]
    )


class AgentForm(FlaskForm):  # type: ignore[misc]
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=64)])
    extension = StringField(_l("Extension (Asterisk interface)"), validators=[Optional(), Length(max=32)])
    twilio_identity = StringField(_l("Twilio Client identity"), validators=[Optional(), Length(max=64)])
    skill_level = SelectField(
        _l("Skill level"), choices=[SelectChoice(level, SKILL_LABELS[level]) for level in SKILL_LEVELS]
    )
    team = StringField(_l("Team"), validators=[Optional(), Length(max=64)])
    queue_ids = CheckboxesField(_l("Queues"), coerce=int, choices=[])
    user_id = SelectField(_l("Account"), choices=[], default="")
    active = BooleanField(_l("Active"), default=True)


class QueueForm(FlaskForm):  # type: ignore[misc]
    title_zh = StringField(_l("Title (Chinese)"), validators=[Optional(), Length(max=64)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=64)])
    agent_ids = CheckboxesField(_l("Agents"), coerce=int, choices=[])


class NewQueueForm(QueueForm):
    name = StringField(
        _l("Name (as the dialplan and Twilio use it)"), validators=[DataRequired(), Length(max=64)]
    )
