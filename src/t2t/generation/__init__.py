"""Generation: greedy, sampling and beam search with a KV cache, candidate scoring, text pipelines.

    model.generate(input_ids, attention_mask, max_new_tokens=32, num_beams=4)   # transformers' names
    model.score(input_ids, candidate_ids)                                      # log-likelihoods
    load_pipeline("ckpt/")("translate English to German: house")               # text in, text out

See docs/generation.md.
"""

from t2t.generation.config import GenerationConfig
from t2t.generation.pipeline import Pipeline, load_pipeline
from t2t.generation.scoring import pick_best, rank_candidates, score
from t2t.generation.search import GenerationOutput, generate, stream_tokens

__all__ = [
    "GenerationConfig",
    "GenerationOutput",
    "Pipeline",
    "generate",
    "load_pipeline",
    "pick_best",
    "rank_candidates",
    "score",
    "stream_tokens",
]
