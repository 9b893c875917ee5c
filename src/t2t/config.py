"""ModelConfig: one dataclass describes T5, BERT, GPT-2 and Llama alike.

The three families differ only in switches (arch, norm, norm_position, position, ffn, bias, ...), so a
single set of blocks builds all of them. Impossible combinations are refused here, when the config is
built, never later inside a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2t.configbase import StrictConfig, check_choice, check_range
from t2t.errors import ConfigError

ARCHS = ("encoder-decoder", "encoder", "decoder")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")
POSITIONS = ("t5-relative", "learned", "sinusoidal", "rope")
FFNS = ("relu", "gelu", "gelu_new", "silu", "gated-gelu", "swiglu")
INITS = ("t5", "normal")
# Output heads each architecture can carry; the first is its default (language modelling / pre-training).
HEADS = {
    "encoder-decoder": ("lm",),
    "encoder": (
        "pretraining",
        "classification",
        "regression",
        "token-classification",
        "span-qa",
        "multiple-choice",
    ),
    "decoder": ("lm", "classification", "regression", "similarity", "multiple-choice"),
}

# The activation inside each feed-forward variant; the gated ones multiply it by a second projection.
FFN_ACTIVATION = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_new",
    "silu": "silu",
    "gated-gelu": "gelu_new",  # T5 v1.1 / Flan-T5 use the tanh approximation
    "swiglu": "silu",
}


@dataclass
class ModelConfig(StrictConfig):
    """Every architectural choice of a t2t model; see `t2t.presets` for the published shapes."""

    arch: str = "encoder-decoder"
    vocab_size: int = 32128
    d_model: int = 512
    n_heads: int = 8
    n_kv_heads: int | None = None  # None: as many as n_heads (multi-head); 1: multi-query
    head_dim: int | None = None  # None: d_model // n_heads
    d_ff: int = 2048
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    norm: str = "rmsnorm"
    norm_eps: float = 1e-6
    norm_position: str = "pre"
    position: str = "t5-relative"
    relative_buckets: int = 32
    relative_max_distance: int = 128
    rope_theta: float = 10000.0
    max_positions: int = 512
    ffn: str = "relu"
    bias: bool = False
    scale_attention: bool = True  # False for T5: its 1/sqrt(d) is folded into the query init
    dropout: float = 0.1
    attention_dropout: float | None = None  # None: same as dropout
    tie_embeddings: bool = True
    scale_tied_logits: bool = False  # T5: decoder output times d_model**-0.5 before the tied LM head
    type_vocab_size: int = 0  # BERT's segment (token type) vocabulary; 0: none
    pad_id: int = 0
    eos_id: int | None = 1
    bos_id: int | None = None
    decoder_start_id: int | None = 0
    init: str = "normal"  # "t5": T5's fan-in scaled init; "normal": N(0, init_std) as BERT / GPT-2 / Llama
    init_std: float = 0.02
    # Fine-tuning heads (BERT's task heads; GPT's linear head on the extract token).
    head: str | None = None  # None: the arch's default, "lm" (or "pretraining" for an encoder)
    num_labels: int = 2
    label_names: list[str] | None = None
    classifier_dropout: float | None = None  # None: same as dropout
    lm_loss_weight: float = 0.5  # GPT fine-tuning: weight of the auxiliary language-modelling loss

    def validate(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        check_choice("norm", self.norm, NORMS)
        check_choice("norm_position", self.norm_position, NORM_POSITIONS)
        check_choice("position", self.position, POSITIONS)
        check_choice("ffn", self.ffn, FFNS)
        check_choice("init", self.init, INITS)
        for name in ("vocab_size", "d_model", "n_heads", "d_ff"):
            check_range(name, getattr(self, name), 1)
        check_range("n_encoder_layers", self.n_encoder_layers, 0)
        check_range("n_decoder_layers", self.n_decoder_layers, 0)
        check_range("norm_eps", self.norm_eps, 0.0, 1.0)
        check_range("dropout", self.dropout, 0.0, 0.999)
        if self.attention_dropout is not None:
            check_range("attention_dropout", self.attention_dropout, 0.0, 0.999)
        check_range("init_std", self.init_std, 0.0)
        check_range("type_vocab_size", self.type_vocab_size, 0)
        self._validate_layers()
        self._validate_attention_heads()
        self._validate_positions()
        for name in ("pad_id", "eos_id", "bos_id", "decoder_start_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{name}={value} is out of range [0, vocab_size={self.vocab_size})")
        if self.scale_tied_logits and not self.tie_embeddings:
            raise ConfigError(
                "scale_tied_logits=True needs tie_embeddings=True (T5 scales only a tied LM head)"
            )
        if self.arch == "encoder" and not self.tie_embeddings:
            raise ConfigError(
                "tie_embeddings=False is not supported for arch='encoder': the masked-LM head of an "
                "encoder always projects with the embedding matrix (as BERT does); set tie_embeddings=True"
            )
        self._validate_head()

    def _validate_layers(self) -> None:
        enc, dec = self.n_encoder_layers, self.n_decoder_layers
        if self.arch == "encoder-decoder":
            if enc < 1 or dec < 1:
                raise ConfigError(
                    f"arch='encoder-decoder' needs n_encoder_layers >= 1 and n_decoder_layers >= 1, "
                    f"got {enc} and {dec}"
                )
            if self.decoder_start_id is None:
                raise ConfigError("arch='encoder-decoder' needs decoder_start_id (T5 uses the pad id, 0)")
        elif self.arch == "encoder" and (enc < 1 or dec != 0):
            raise ConfigError(
                f"arch='encoder' needs n_encoder_layers >= 1 and n_decoder_layers=0, got {enc}, {dec}"
            )
        elif self.arch == "decoder" and (dec < 1 or enc != 0):
            raise ConfigError(
                f"arch='decoder' needs n_decoder_layers >= 1 and n_encoder_layers=0, got {dec}, {enc}"
            )

    def _validate_head(self) -> None:
        if self.head is not None and self.head not in HEADS[self.arch]:
            raise ConfigError(
                f"head={self.head!r} is not one of {', '.join(HEADS[self.arch])} (for arch={self.arch!r})"
            )
        check_range("num_labels", self.num_labels, 1)
        check_range("lm_loss_weight", self.lm_loss_weight, 0.0)
        if self.classifier_dropout is not None:
            check_range("classifier_dropout", self.classifier_dropout, 0.0, 0.999)
        if self.label_names is not None and len(self.label_names) != self.num_labels:
            raise ConfigError(
                f"label_names has {len(self.label_names)} names but num_labels={self.num_labels}"
            )
        if self.task_head in ("regression",) and self.num_labels != 1:
            raise ConfigError(
                f"head='regression' predicts one value: set num_labels=1 (got {self.num_labels})"
            )

    def _validate_attention_heads(self) -> None:
        if self.n_kv_heads is not None:
            check_range("n_kv_heads", self.n_kv_heads, 1)
            if self.n_heads % self.n_kv_heads:
                raise ConfigError(f"n_heads={self.n_heads} is not divisible by n_kv_heads={self.n_kv_heads}")
        if self.head_dim is None:
            if self.d_model % self.n_heads:
                raise ConfigError(
                    f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; set head_dim explicitly"
                )
        else:
            check_range("head_dim", self.head_dim, 1)

    def _validate_positions(self) -> None:
        if self.position == "t5-relative":
            check_range("relative_buckets", self.relative_buckets, 4)
            if self.relative_max_distance <= self.relative_buckets // 4:
                raise ConfigError(
                    f"relative_max_distance={self.relative_max_distance} must exceed relative_buckets // 4 "
                    f"= {self.relative_buckets // 4}"
                )
        if self.position in ("learned", "sinusoidal"):
            check_range("max_positions", self.max_positions, 1)
        if self.position == "sinusoidal" and self.d_model % 2:
            raise ConfigError(f"position='sinusoidal' needs an even d_model, got {self.d_model}")
        if self.position == "rope":
            check_range("rope_theta", self.rope_theta, 1.0)
            if self.dim_head % 2:
                raise ConfigError(f"position='rope' needs an even head_dim, got {self.dim_head}")

    # Derived values: computed, never stored, so they cannot disagree with the fields.
    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def dim_head(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def gated_ffn(self) -> bool:
        return self.ffn in ("gated-gelu", "swiglu")

    @property
    def activation(self) -> str:
        return FFN_ACTIVATION[self.ffn]

    @property
    def attn_dropout(self) -> float:
        return self.dropout if self.attention_dropout is None else self.attention_dropout

    @property
    def task_head(self) -> str:
        """The head actually used: `head`, or the arch's default."""
        return self.head or HEADS[self.arch][0]

    @property
    def head_dropout(self) -> float:
        return self.dropout if self.classifier_dropout is None else self.classifier_dropout

    @property
    def has_encoder(self) -> bool:
        return self.arch in ("encoder-decoder", "encoder")

    @property
    def has_decoder(self) -> bool:
        return self.arch in ("encoder-decoder", "decoder")


__all__ = ["ARCHS", "FFNS", "HEADS", "NORMS", "NORM_POSITIONS", "POSITIONS", "ModelConfig"]
