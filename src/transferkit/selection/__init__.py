"""Model selection: rank candidate backbones for a data set and the user's limits, with evidence.

``rank_backbones(data, candidates, max_latency_ms=...)`` is the one call; underneath are the
transferability scores (:mod:`.scores`), the cost measurement (:mod:`.cost`) and the rule that
combines them (:mod:`.rank`). Images (a folder) and texts (a labelled .csv/.tsv/.jsonl/.txt file,
ranked over the registry's text encoders; ``modality="auto"`` tells them apart).
"""

from .cost import CostReport, TextCostReport, interleaved_latencies, measure_cost, measure_text_cost
from .rank import (
    RULE,
    Candidate,
    CandidateReport,
    Limits,
    RankingResult,
    SelectionError,
    choose_backbone,
    detect_modality,
    mark_pareto_front,
    order_candidates,
    random_init_text_folder,
    random_init_weights,
    rank_backbones,
    score_features,
)

__all__ = ["RULE", "Candidate", "CandidateReport", "CostReport", "Limits", "RankingResult", "SelectionError", "TextCostReport",
           "choose_backbone", "detect_modality", "interleaved_latencies", "mark_pareto_front", "measure_cost", "measure_text_cost", "order_candidates",
           "random_init_text_folder", "random_init_weights", "rank_backbones", "score_features"]
