"""A fake Feishu Open API on 127.0.0.1 that the real lark-oapi client talks to."""

from tests.fakes.feishu.base import FakeFeishu

__all__ = ["FakeFeishu"]
