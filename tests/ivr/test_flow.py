from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from callcenter.exceptions import FlowError
from callcenter.ivr.flow import MenuNode, QueueNode, load_flow, load_flows, parse_flow

FLOWS = Path(__file__).resolve().parents[2] / "ivr_flows"


def hotline_data() -> dict[str, Any]:
    with (FLOWS / "hotline.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_every_shipped_flow_loads() -> None:
    flows = load_flows(FLOWS)
    assert "hotline" in flows
    for flow in flows.values():
        assert flow.flow.start in flow.nodes


def test_hotline_is_the_organisations_menu() -> None:
    flow = load_flows(FLOWS)["hotline"]
    menu = flow.node("main_menu")
    assert isinstance(menu, MenuNode)
    consultation = flow.node(menu.options["1"])
    complaint = flow.node(menu.options["2"])
    assert isinstance(consultation, QueueNode) and consultation.queue == "consultation"
    assert isinstance(complaint, QueueNode) and complaint.queue == "complaint"
    assert "业务咨询" in flow.text("main_menu", "zh") and "投诉建议" in flow.text("main_menu", "zh")
    assert flow.text("main_menu", "en").startswith("For consultation")


def broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(hotline_data())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "node", "message"),
    [
        (
            lambda d: d["nodes"]["main_menu"]["options"].update({"1": "nowhere"}),
            "main_menu",
            "options.1 goes to 'nowhere'",
        ),
        (
            lambda d: d["nodes"]["main_menu"]["options"].update({"12": "route_complaint"}),
            "main_menu",
            "not a single DTMF key",
        ),
        (
            lambda d: d["nodes"]["welcome"].update({"prompt": "missing"}),
            "welcome",
            "'missing' is not defined",
        ),
        (lambda d: d["nodes"]["welcome"].update({"type": "dance"}), "welcome", "type"),
        (lambda d: d["nodes"]["route_complaint"].update({"colour": "red"}), "route_complaint", "colour"),
        (
            lambda d: d["nodes"].update({"orphan": {"type": "hangup", "reason": "x"}}),
            "orphan",
            "not reachable",
        ),
        (lambda d: d["nodes"]["main_menu"].update({"timeout_s": -1}), "main_menu", "timeout_s"),
        (lambda d: d["nodes"]["main_menu"].pop("on_invalid"), "main_menu", "on_invalid"),
        (lambda d: d["nodes"]["english"].update({"language": "fr"}), "english", "'fr' is not among"),
        (lambda d: d["nodes"]["closed"].update({"kind": "lottery"}), "closed", "kind"),
        (lambda d: d["nodes"]["voicemail"].update({"max_s": 9000}), "voicemail", "max_s"),
    ],
)
def test_errors_name_the_file_and_node(change: Any, node: str, message: str) -> None:
    with pytest.raises(FlowError) as info:
        parse_flow(broken(change), "ivr_flows/hotline.toml")
    assert info.value.node == node
    assert str(info.value).startswith(f"ivr_flows/hotline.toml: node {node!r}")
    assert message in str(info.value)


def test_missing_translation_is_named() -> None:
    data = broken(lambda d: d["prompts"]["welcome"].pop("en"))
    with pytest.raises(FlowError, match="prompt 'welcome' has no text for en"):
        parse_flow(data, "hotline.toml")


def test_a_loop_without_a_menu_is_refused() -> None:
    def loop(d: dict[str, Any]) -> None:
        d["nodes"]["welcome"]["next"] = "again"
        d["nodes"]["again"] = {"type": "play", "prompt": "welcome", "next": "welcome"}

    with pytest.raises(FlowError, match="loops back to itself with no menu"):
        parse_flow(broken(loop), "hotline.toml")


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[flow\n", encoding="utf-8")
    with pytest.raises(FlowError, match=r"bad\.toml: not valid TOML"):
        load_flow(bad)
    renamed = tmp_path / "other.toml"
    renamed.write_text((FLOWS / "hotline.toml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(FlowError, match="must match the file name"):
        load_flow(renamed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FlowError, match=r"no \*\.toml flow files"):
        load_flows(tmp_path / "empty")


def test_an_entry_point_must_exist() -> None:
    data = broken(lambda d: d["flow"]["entries"].update({"after_hours": "nowhere"}))
    with pytest.raises(FlowError, match="entry 'after_hours' goes to 'nowhere'"):
        parse_flow(data, "ivr_flows/hotline.toml")


def test_nodes_reached_only_from_an_entry_point_are_reachable() -> None:
    flow = load_flows(FLOWS)["hotline"]
    assert flow.entry("queue_callback") == "queue_callback"
    with pytest.raises(FlowError, match="no entry point 'lunch'"):
        flow.entry("lunch")
