"""The organisation's default QA scorecard (REQUIREMENTS E53 and its table).

工作态度 30 % / 专业知识 30 % / 业务能力 40 %, with the call-level checklist as pass/fail items inside
those sections. Quarrelling, rude words or hanging up on the caller, and a privacy breach, are
critical: they fail the whole evaluation.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TITLE = "话务质检评分表 Call quality scorecard"


def _points(key: str, title: str, points: int, *, na: bool = False) -> dict[str, Any]:
    return {"key": key, "title": title, "kind": "points", "points": points, "na_allowed": na}


def _check(key: str, title: str, points: int, *, na: bool = False, critical: bool = False) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "kind": "check",
        "points": points,
        "na_allowed": na,
        "critical": critical,
    }


DEFAULT_SCORECARD: dict[str, Any] = {
    "sections": [
        {
            "key": "attitude",
            "title": "工作态度 Work attitude",
            "weight": 30,
            "items": [
                _points("answering_standard", "接听电话符合规范 Phone answering meets the standard", 10),
                _points("politeness", "礼貌用语 Politeness", 10),
                _points("discipline", "工作纪律 Discipline", 5),
                _points("initiative", "主动性与责任心 Initiative and responsibility", 5),
                _points("efficiency", "工作效率 Efficiency", 5),
                _check("greeting", "开头语报公司、部门、姓名 Greeting with company, department and name", 2),
                _check("three_rings", "三声内接听 Answered within 3 rings", 2),
                _check("customer_name", "称呼客户姓名 Addresses the customer by name", 2, na=True),
                _check("no_interrupting", "不打断客户 Does not interrupt", 2),
                _check("clear_voice", "声音清晰 Clear voice", 2),
                _check("mandarin", "使用普通话(客户要求除外)Mandarin unless asked otherwise", 2),
                _check(
                    "no_rudeness", "无争吵、粗言或挂机 No quarrel, rude words or hanging up", 5, critical=True
                ),
            ],
        },
        {
            "key": "knowledge",
            "title": "专业知识掌握 Professional knowledge",
            "weight": 30,
            "items": [
                _points("product_lines", "产品线与品牌 Product lines and brands", 10, na=True),
                _points("product_features", "产品功能 Product features", 10, na=True),
                _points("complaint_causes", "了解投诉原因 Knows the causes of complaints", 10, na=True),
                _check("no_vague_words", "不用“可能/大概/看情况” No vague words", 2),
            ],
        },
        {
            "key": "ability",
            "title": "业务能力 Business ability",
            "weight": 40,
            "items": [
                _points("resolved_in_time", "投诉在时限内处理 Resolved within the deadline", 10, na=True),
                _points("feedback_form", "反馈单填写完整 Feedback form completed", 5, na=True),
                _points("crux_identified", "思路清晰、抓住关键 Clear reasoning, finds the crux", 10),
                _points("refund_correct", "退款处理正确 Refunds correct", 5, na=True),
                _check("accurate_record", "通话记录准确(原因与结果)Accurate call record", 2),
                _check("reply_time", "承诺并遵守回复时间 Reply time promised and kept", 2, na=True),
                _check("privacy", "尊重客户隐私 Privacy respected", 2, critical=True),
            ],
        },
    ]
}
