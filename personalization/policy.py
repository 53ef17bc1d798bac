"""Personalization and diversity for one request, as the search's `ResultPolicy`."""

from __future__ import annotations

from personalization.profile import Profile
from personalization.ranking import PersonalConfig, Personalized, diversify, personalize
from retrieval.search import Adjustment, ProductHit
from retrieval.stores.base import DocumentStore

BRAND_CAPPED = "moved below the first page: more than {cap} results of {brand}"


class PersonalPolicy:
    """Re-orders the best ``config.depth`` results for ``profile`` (None: relevance order, as
    for a shopper without history or who opted out), then applies the configured diversity
    (near-duplicates dropped, a cap per brand on the first page). Every result it ranked carries
    an `Adjustment`: its relevance rank and why it moved."""

    def __init__(
        self, store: DocumentStore, profile: Profile | None, config: PersonalConfig
    ) -> None:
        self.store = store
        self.profile = profile if profile is not None and not profile.is_empty() else None
        self.config = config
        self.depth = config.depth

    @property
    def personalized(self) -> bool:
        """Whether a profile takes part (otherwise only diversity does)."""
        return self.profile is not None

    def apply(self, hits: list[ProductHit], page_size: int) -> list[ProductHit]:
        """``hits`` in the personalized, diversified order (near-duplicates left out)."""
        config = self.config
        needs_vectors = config.dedupe_similarity is not None or (
            self.profile is not None and self.profile.preference() is not None
        )
        vectors = self.store.product_vectors([h.product.id for h in hits]) if needs_vectors else {}
        candidates = [(str(i), h.product) for i, h in enumerate(hits)]
        ranked = personalize(candidates, self.profile, vectors, config)
        diverse = diversify(
            ranked,
            page_size=page_size,
            brand_cap=config.brand_cap,
            dedupe_similarity=config.dedupe_similarity,
            vectors=vectors,
        )
        # the brand cap moves the excess to just after the page, in order
        pushed = diverse.items[page_size : page_size + diverse.pushed]
        capped = {item.key for item in pushed}
        return [
            ProductHit(item.product, hits[int(item.key)].hit, self._adjustment(item, capped))
            for item in diverse.items
        ]

    def _adjustment(self, item: Personalized, capped: set[str]) -> Adjustment:
        reasons = list(item.personal.reasons) if item.personal is not None else []
        if item.key in capped and item.product.brand:
            reasons.append(BRAND_CAPPED.format(cap=self.config.brand_cap, brand=item.product.brand))
        return Adjustment(
            relevance_rank=item.relevance_rank,
            reasons=tuple(reasons),
            personal_score=None if item.personal is None else round(item.personal.score, 4),
        )
