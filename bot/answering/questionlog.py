"""The question log as the answering core sees it: `retrieval.questions` storage, bot's own types.

Storage (the engine, the space rule, feedback, re-embedding on a model change) lives in
`retrieval.questions`; this only maps its results to `bot.answering.models.OtherAsked`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from bot.answering.models import OtherAsked
from retrieval.questions import QuestionLog as _StoredLog


class QuestionLog(_StoredLog):
    def similar(self, vector: np.ndarray, question: str, *, limit: int = 3,  # type: ignore[override]
                allowed_spaces: Sequence[str] | None = None,
                pages_ok: Callable[[Sequence[str]], bool] | None = None) -> list[OtherAsked]:
        """Up to `limit` earlier, different, answered questions close to this one; newest wording wins."""
        return [OtherAsked(a.question, a.asked_at)
                for a in super().similar(vector, question, limit=limit, allowed_spaces=allowed_spaces,
                                         pages_ok=pages_ok)]
