"""What the question log says about the wiki, for its owners: gap topics, cited pages, coverage over time.

Pure functions over the question log and the index (`report.build_report`), rendered by the CLI
(`wikibot gaps`), the owners' web page (`admin`) and the weekly digest (`digest`).
"""

from bot.insights.questions import Asked, Scope, load_questions
from bot.insights.report import GapReport, PageRef, ReportOptions, Topic, build_report

__all__ = ["Asked", "Scope", "load_questions", "GapReport", "PageRef", "ReportOptions", "Topic",
           "build_report"]
