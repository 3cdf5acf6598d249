"""Block Kit limits as Slack enforces them, for the fake: a message that breaks one is refused.

Limits from Slack's Block Kit reference (the same numbers slack-sdk's model
validators use). Error strings follow Slack's `invalid_blocks` shape:
`must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELDS = 10
FIELD_TEXT = 2000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_CHARS = 255
KNOWN = {"section", "context", "actions", "divider", "header", "image", "rich_text", "input", "file", "video"}


def validate_blocks(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        errors += _block(block, f"/blocks/{i}")
    return errors


def _text(obj: Any, where: str, limit: int) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
        return [f"must be a text object [json-pointer:{where}]"]
    value = obj.get("text")
    if not isinstance(value, str) or not value:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in KNOWN:
        return [f"unsupported type [json-pointer:{where}/type]"]
    errors: list[str] = []
    if len(str(block.get("block_id", ""))) > ID_CHARS:
        errors.append(f"must be less than {ID_CHARS + 1} characters [json-pointer:{where}/block_id]")
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide either text or fields [json-pointer:{where}]")
        if "text" in block:
            errors += _text(block["text"], f"{where}/text", SECTION_TEXT)
        fields = block.get("fields") or []
        if len(fields) > FIELDS:
            errors.append(f"no more than {FIELDS} items allowed [json-pointer:{where}/fields]")
        for j, f in enumerate(fields):
            errors += _text(f, f"{where}/fields/{j}", FIELD_TEXT)
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > CONTEXT_ELEMENTS:
            errors.append(f"must have 1 to {CONTEXT_ELEMENTS} items [json-pointer:{where}/elements]")
        for j, e in enumerate(elements):
            if e.get("type") in ("mrkdwn", "plain_text"):
                errors += _text(e, f"{where}/elements/{j}", SECTION_TEXT)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements or len(elements) > ACTIONS_ELEMENTS:
            errors.append(f"must have 1 to {ACTIONS_ELEMENTS} items [json-pointer:{where}/elements]")
        for j, e in enumerate(elements):
            errors += _element(e, f"{where}/elements/{j}")
    return errors


def _element(e: Any, where: str) -> list[str]:
    if not isinstance(e, dict):
        return [f"must be an object [json-pointer:{where}]"]
    errors: list[str] = []
    if e.get("type") == "button":
        text = e.get("text") or {}
        if text.get("type") != "plain_text":
            errors.append(f"must be a plain_text object [json-pointer:{where}/text]")
        errors += _text(text, f"{where}/text", BUTTON_TEXT)
        if len(str(e.get("value", ""))) > BUTTON_VALUE:
            errors.append(f"must be less than {BUTTON_VALUE + 1} characters [json-pointer:{where}/value]")
    if len(str(e.get("action_id", ""))) > ID_CHARS:
        errors.append(f"must be less than {ID_CHARS + 1} characters [json-pointer:{where}/action_id]")
    return errors
