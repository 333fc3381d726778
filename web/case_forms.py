"""The case pages' forms (Flask-WTF, CSRF on every POST). Choices are filled per request from settings."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from web import case_labels

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def options(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """Choices as wtforms 3.3 wants them (tuples are deprecated there)."""
    return [SelectChoice(value, label) for value, label in pairs]


def choices(table: Mapping[str, LazyString], *, blank: LazyString | None = None) -> list[SelectChoice]:
    pairs = [(code, str(title)) for code, title in table.items()]
    return options([("", str(blank)), *pairs] if blank is not None else pairs)


class NewCaseForm(FlaskForm):  # type: ignore[misc]
    case_type = SelectField(_l("Type"), validators=[DataRequired()])
    channel = SelectField(_l("Channel"), validators=[DataRequired()])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    complexity = SelectField(_l("Complexity"), validators=[DataRequired()])
    urgency = SelectField(_l("Urgency"), validators=[DataRequired()])
    title = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200)])
    content = TextAreaField(_l("What the customer reports"), validators=[Length(max=20000)])
    contact_name = StringField(_l("Customer name"), validators=[Length(max=128)])
    contact_number = StringField(_l("Phone number"), validators=[Length(max=64)])
    contact_other = StringField(_l("Other contact (e-mail, WeChat …)"), validators=[Length(max=255)])
    persons_involved = TextAreaField(_l("Persons involved"), validators=[Length(max=2000)])
    promised_reply_at = DateTimeLocalField(
        _l("Reply promised for"), format=DATETIME_LOCAL, validators=[Optional()]
    )
    call_id = HiddenField()

    def fill_choices(self, categories: list[tuple[str, str]]) -> None:
        self.case_type.choices = choices(case_labels.CASE_TYPES)
        self.channel.choices = choices(case_labels.CHANNELS)
        self.category.choices = options(categories)
        self.complexity.choices = choices(case_labels.COMPLEXITIES)
        self.urgency.choices = choices(case_labels.URGENCIES)


class SearchForm(FlaskForm):  # type: ignore[misc]
    """The list's filters, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Case number, name or subject"), validators=[Optional(), Length(max=100)])
    number = StringField(_l("Phone number"), validators=[Optional(), Length(max=64)])
    date_from = DateField(_l("Registered from"), validators=[Optional()])
    date_to = DateField(_l("to"), validators=[Optional()])
    queue = SelectField(_l("Queue"), validators=[Optional()])
    agent = SelectField(_l("Agent"), validators=[Optional()])
    status = SelectField(_l("Status"), validators=[Optional()])
    case_type = SelectField(_l("Type"), validators=[Optional()])
    delayed = BooleanField(_l("Delayed only"))
    dissatisfied = BooleanField(_l("Dissatisfied customers"))
    major = BooleanField(_l("Major only"))

    def fill_choices(self, queues: list[tuple[str, str]], agents: list[tuple[str, str]]) -> None:
        anything = _l("Any")
        self.queue.choices = options([("", str(anything)), *queues])
        self.agent.choices = options([("", str(anything)), *agents])
        self.status.choices = choices(case_labels.STATUSES, blank=anything)
        self.case_type.choices = choices(case_labels.CASE_TYPES, blank=anything)


class ClassifyForm(FlaskForm):  # type: ignore[misc]
    category = SelectField(_l("Category"), validators=[DataRequired()])
    complexity = SelectField(_l("Complexity"), validators=[DataRequired()])
    urgency = SelectField(_l("Urgency"), validators=[DataRequired()])


class DepartmentForm(FlaskForm):  # type: ignore[misc]
    department = SelectField(_l("Department"), validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[Length(max=2000)])


class SolutionForm(FlaskForm):  # type: ignore[misc]
    solution = TextAreaField(_l("Solution"), validators=[DataRequired(), Length(max=20000)])
    remedy = SelectField(_l("Remedy"), validators=[DataRequired()])


class DecisionForm(FlaskForm):  # type: ignore[misc]
    decision = SelectField(_l("Decision"), validators=[DataRequired()])

    def fill_choices(self, approve: str, reject: str) -> None:
        self.decision.choices = options([("approve", approve), ("reject", reject)])

    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])


class NoteForm(FlaskForm):  # type: ignore[misc]
    """Close, reopen, escalate, first reply, the customer reply: one text."""

    note = TextAreaField(_l("Note"), validators=[Length(max=20000)])


class CallbackForm(FlaskForm):  # type: ignore[misc]
    outcome = SelectField(_l("Outcome"), validators=[DataRequired()])
    satisfaction = IntegerField(_l("Satisfaction (1–5)"), validators=[InputRequired(), NumberRange(1, 5)])


class ExtendForm(FlaskForm):  # type: ignore[misc]
    new_due = DateField(_l("New due date"), validators=[InputRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class FollowUpForm(FlaskForm):  # type: ignore[misc]
    follow_up = SelectField(_l("Follow-up"), validators=[Optional()])
    follow_up_date = DateField(_l("Resolve by"), validators=[Optional()])


class PromiseForm(FlaskForm):  # type: ignore[misc]
    at = DateTimeLocalField(_l("Reply promised for"), format=DATETIME_LOCAL, validators=[InputRequired()])


class AttachmentForm(FlaskForm):  # type: ignore[misc]
    file = FileField(_l("File"), validators=[FileRequired()])


class LinkCallForm(FlaskForm):  # type: ignore[misc]
    call_id = IntegerField(_l("Call number"), validators=[InputRequired(), NumberRange(min=1)])
