"""How big the quickstart's model is and how long each stage trains: one plan for the full run (at most
15 minutes on a 2-core CPU) and one for `--fast` (about 2 minutes, what the tests run)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuickstartPlan:
    name: str
    vocab_size: int  # sentencepiece tokens, 100 sentinels included (padded to a multiple of 128)
    d_model: int
    n_layers: int  # encoder layers = decoder layers
    n_heads: int
    d_ff: int
    pretrain_steps: int
    pretrain_batch_size: int
    pretrain_input_length: int  # span-corrupted inputs; the raw span is longer (T5's 512 -> 568)
    finetune_steps: int
    finetune_batch_size: int  # rows per step; packed rows hold several examples each
    finetune_pack: bool  # several examples per row (attention stays inside each), as T5 fine-tunes
    pretrain_lr: float  # AdamW, linear warmup then T5's inverse square root
    finetune_lr: float  # AdamW, linear warmup then constant (T5 fine-tunes at a constant rate)
    warmup_steps: int
    max_input_length: int
    max_target_length: int
    eval_limit: int | None  # test examples per task (None: all)
    # Pretraining text: the built-in prose ("prose"), or the prose and the tasks' training inputs
    # without their targets ("prose+inputs", in-domain unlabeled text).
    pretrain_corpus: str = "prose"
    dropout: float = 0.0
    # Longest sentencepiece piece: 16 (T5's) fuses German number words into pieces such as
    # "dreihundertfünf", which a test number then needs in a combination training never showed.
    max_piece_length: int = 16
    finetune_schedule: str = "constant"  # after warmup: constant (T5's fine-tuning) or linear decay to 0
    # T5's encoder-decoder objectives over the pretraining text: span_corruption, or bert_mlm (15% of the
    # tokens masked BERT's way, the target the whole chunk: T5's "BERT-style" objective, which teaches
    # the model to copy its input).
    pretrain_objective: str = "span_corruption"
    # The low-data arm: both variants fine-tuned again on this share of every task's training split for
    # low_data_steps steps, where pretraining has room to show (docs/experiments/objectives).
    low_data_share: float = 0.1
    low_data_steps: int = 700


# The full plan's model is small on purpose (0.3 M parameters: d_model 64, 2+2 layers, a 1,000-piece
# vocabulary). Measured with benchmarks/quickstart_probe.py (from scratch, the question task, 700 steps,
# lr 2e-3, packed 128-token rows): this model reaches 84% exact match on training items and 54% on items
# whose entities it never saw, the previous plan's (d_model 128, 3+3 layers) 10% and 0%; at 2,000 steps
# the small one reads 92% of unseen answers. Small pieces and a small model learn to copy from the input
# sooner than a larger one learns to remember training entities, and 5,000 mixture steps at 49 ms take
# it past 90% on every rule task (README, "The quickstart"). Pretraining is BERT-style MLM: in the
# objectives experiment (docs/experiments/objectives/longer) it is the objective whose pretraining learns
# to copy, and then the one that transfers to unseen entities with 10% of the data; span corruption at
# this scale never did.
PLANS = {
    "full": QuickstartPlan(
        name="full",
        vocab_size=1000,
        d_model=64,
        n_layers=2,
        n_heads=4,
        d_ff=256,
        pretrain_steps=1500,
        pretrain_batch_size=32,
        pretrain_input_length=64,
        finetune_steps=5000,
        finetune_batch_size=12,
        finetune_pack=True,
        pretrain_lr=2e-3,
        finetune_lr=2e-3,
        warmup_steps=50,
        max_input_length=128,
        max_target_length=48,
        eval_limit=None,
        finetune_schedule="linear",
        pretrain_objective="bert_mlm",
        low_data_share=0.1,
        low_data_steps=700,
    ),
    "fast": QuickstartPlan(
        name="fast",
        vocab_size=1000,
        d_model=64,
        n_layers=2,
        n_heads=4,
        d_ff=128,
        pretrain_steps=60,
        pretrain_batch_size=16,
        pretrain_input_length=48,
        finetune_steps=120,
        finetune_batch_size=8,
        finetune_pack=True,
        pretrain_lr=3e-3,
        finetune_lr=2e-3,
        warmup_steps=20,
        max_input_length=80,
        max_target_length=24,
        eval_limit=40,
        pretrain_objective="bert_mlm",
        low_data_steps=30,
    ),
}
