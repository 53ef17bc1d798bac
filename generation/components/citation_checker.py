"""Pipeline component: keep only citations to sources the model was given."""

from __future__ import annotations

from haystack import component

from generation.citations import CheckedAnswer, check_citations
from generation.prompts import ABSTAIN_MARKER, Source


@component
class CitationChecker:
    """Validates the reply's citations; an answer with none left (or the model's own
    "not in sources" marker) is an abstention."""

    @component.output_types(answer=CheckedAnswer, abstained=bool)
    def run(self, reply: str, sources: list[Source]) -> dict[str, object]:
        """The checked answer and whether it must abstain."""
        checked = check_citations(reply, {s.number for s in sources})
        abstained = ABSTAIN_MARKER in reply or not checked.supported
        return {"answer": checked, "abstained": abstained}
