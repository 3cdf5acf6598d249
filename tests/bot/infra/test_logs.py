import io
import json
import logging

from bot.app.settings import load_settings
from bot.infra.logs import configure, secret_values


def test_debug_logs_never_carry_secrets_even_from_other_libraries():
    settings = load_settings(environ={"FEISHU_APP_SECRET": "feishu-secret-value", "SLACK_SIGNING_SECRET": "sign123",
                                      "ANTHROPIC_API_KEY": "sk-ant-api03-abcdefgh"})
    buf = io.StringIO()
    handler = configure("DEBUG", secret_values(settings), json_lines=True, stream=buf)
    try:
        logging.getLogger("lark_oapi").debug("POST body {\"app_secret\": \"feishu-secret-value\"}")
        logging.getLogger("slack_sdk").debug("headers: Authorization: Bearer xoxb-1234-5678-abcdef")
        logging.getLogger("httpx").debug("token t-g1044qeGEDXTB6NDJOGV4JQCYDGHRBARFTGT1234 sign123")
        logging.getLogger("bot").info("event handled", extra={"event_id": "ev_1", "note": "sk-ant-api03-abcdefgh"})
    finally:
        logging.getLogger().removeHandler(handler)
    out = buf.getvalue()
    for secret in ("feishu-secret-value", "xoxb-1234", "t-g1044qeGEDXTB6", "sign123", "sk-ant-api03"):
        assert secret not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 4 and lines[-1]["event_id"] == "ev_1" and lines[-1]["msg"] == "event handled"
