"""Model selection: rank candidate backbones for a data set and the user's limits, with evidence.

``rank_backbones(data, candidates, max_latency_ms=...)`` is the one call; underneath are the
transferability scores (:mod:`.scores`), the cost measurement (:mod:`.cost`) and the rule that
combines them (:mod:`.rank`). Image backbones only for now (the text modality is not in the
registry yet).
"""

from .cost import CostReport, measure_cost
from .rank import (
    RULE,
    Candidate,
    CandidateReport,
    Limits,
    RankingResult,
    SelectionError,
    choose_backbone,
    mark_pareto_front,
    order_candidates,
    random_init_weights,
    rank_backbones,
    score_features,
)

__all__ = ["RULE", "Candidate", "CandidateReport", "CostReport", "Limits", "RankingResult", "SelectionError", "choose_backbone",
           "mark_pareto_front", "measure_cost", "order_candidates", "random_init_weights", "rank_backbones", "score_features"]
