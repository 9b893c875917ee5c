"""ModelConfig: one dataclass describes T5, BERT, GPT-2 and Llama alike; GenerationConfig: how to decode.

The three families differ only in switches (arch, norm, norm_position, position, ffn, bias, ...), so a
single set of blocks builds all of them. Impossible combinations are refused here, when the config is
built, never later inside a forward pass. A ModelConfig also answers transformers' attribute names
(`config.hidden_size`, `config.pad_token_id`, ...) read-only, from one table (`HF_NAMES`).

GenerationConfig lives here, on the ground floor, so that a model can carry its generation defaults
(`model.generation_config`, read from and written to generation_config.json) without the model layer
importing generation; `t2t.generation.config` re-exports it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# Beyond these a size is a typo, not a model: one dimension of a weight past 2**31 - 1 elements, or more
# layers than any published model by far (the memory estimate refuses what is merely too large here).
MAX_SIZE = 2**31 - 1
MAX_LAYERS = 10_000


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
            check_range(name, getattr(self, name), 1, MAX_SIZE)
        for name in ("head_dim", "n_kv_heads", "relative_buckets", "relative_max_distance", "max_positions"):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), 0, MAX_SIZE)
        check_range("num_labels", self.num_labels, 1, MAX_SIZE)
        check_range("n_encoder_layers", self.n_encoder_layers, 0, MAX_LAYERS)
        check_range("n_decoder_layers", self.n_decoder_layers, 0, MAX_LAYERS)
        check_range("norm_eps", self.norm_eps, 0.0, 1.0)
        check_range("dropout", self.dropout, 0.0, 0.999)
        if self.attention_dropout is not None:
            check_range("attention_dropout", self.attention_dropout, 0.0, 0.999)
        check_range("init_std", self.init_std, 0.0)
        check_range("type_vocab_size", self.type_vocab_size, 0, MAX_SIZE)
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

    @property
    def n_layers(self) -> int:
        """The layers of the main stack: the encoder's when there is one (T5's num_layers), else the
        decoder's."""
        return self.n_encoder_layers if self.has_encoder else self.n_decoder_layers


# transformers' config attribute names, answered from t2t's fields (or values derived from them), so
# code written against `model.config` of a transformers model reads a t2t model's too. Read-only:
# a t2t config is changed with `config.replace(field=value)`, by t2t's names.
HF_NAMES: dict[str, str | Callable[[ModelConfig], Any]] = {
    "pad_token_id": "pad_id",
    "eos_token_id": "eos_id",
    "bos_token_id": "bos_id",
    "decoder_start_token_id": "decoder_start_id",
    "hidden_size": "d_model",
    "n_embd": "d_model",
    "num_attention_heads": "n_heads",
    "num_heads": "n_heads",
    "n_head": "n_heads",
    "num_key_value_heads": "kv_heads",
    "d_kv": "dim_head",
    "intermediate_size": "d_ff",
    "n_inner": "d_ff",
    "num_layers": "n_layers",
    "num_hidden_layers": "n_layers",
    "n_layer": "n_layers",
    "num_decoder_layers": "n_decoder_layers",
    "max_position_embeddings": "max_positions",
    "n_positions": "max_positions",
    "layer_norm_epsilon": "norm_eps",
    "layer_norm_eps": "norm_eps",
    "rms_norm_eps": "norm_eps",
    "relative_attention_num_buckets": "relative_buckets",
    "relative_attention_max_distance": "relative_max_distance",
    "tie_word_embeddings": "tie_embeddings",
    "dropout_rate": "dropout",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attn_dropout",
    "initializer_range": "init_std",
    "is_encoder_decoder": lambda c: c.arch == "encoder-decoder",
    # The transformers family whose layout the switches follow (t5, bert, gpt2 or llama).
    "model_type": lambda c: {"encoder-decoder": "t5", "encoder": "bert"}.get(
        c.arch, "llama" if c.position == "rope" else "gpt2"
    ),
    "id2label": lambda c: dict(enumerate(c.label_names or [f"LABEL_{i}" for i in range(c.num_labels)])),
    "label2id": lambda c: {
        name: i for i, name in enumerate(c.label_names or [f"LABEL_{i}" for i in range(c.num_labels)])
    },
}


class ReadOnlyNameError(ConfigError, AttributeError):
    """Setting one of transformers' attribute names on a ModelConfig: they are read-only aliases."""


class _HFName:
    """One of transformers' attribute names on ModelConfig: reads the t2t field, refuses to be set."""

    def __init__(self, name: str, source: str | Callable[[ModelConfig], Any]) -> None:
        self.name = name
        self.source = source

    def __get__(self, config: ModelConfig | None, owner: type | None = None) -> Any:
        if config is None:
            return self
        return self.source(config) if callable(self.source) else getattr(config, self.source)

    def __set__(self, config: ModelConfig, value: Any) -> None:
        what = f"config.{self.name} is read-only"
        if callable(self.source):
            message = f"{what}: t2t derives it from the config's fields"
        elif self.source in config.field_names():
            message = (
                f"{what}: it is transformers' name for t2t's {self.source}; make a changed config with "
                f"config.replace({self.source}={value!r})"
            )
        else:
            message = (
                f"{what}: it is transformers' name for t2t's {self.source}, derived from the config's fields"
            )
        raise ReadOnlyNameError(message)


for _name, _source in HF_NAMES.items():
    setattr(ModelConfig, _name, _HFName(_name, _source))


# ---- generation ----------------------------------------------------------------------------------------
DEFAULT_MAX_NEW_TOKENS = 20
LENGTH_PENALTY_STYLES = ("hf", "gnmt")
EARLY_STOPPING = (True, False, "never")
INT_FIELDS = ("max_new_tokens", "max_length", "min_new_tokens", "num_beams", "top_k")
INT_FIELDS += ("no_repeat_ngram_size", "num_return_sequences", "pad_token_id", "seed")

# transformers' generation options that change nothing when they have these values (its global defaults,
# transformers 5.23); any other value of an option t2t does not implement is refused (or, read from a
# checkpoint's generation_config.json, ignored with a warning). None, False and empty values are neutral
# for every option.
HF_NEUTRAL_GENERATION = {
    "min_length": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "encoder_repetition_penalty": 1.0,
    "encoder_no_repeat_ngram_size": 0,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "guidance_scale": 1.0,
    "num_assistant_tokens": 20,
    "num_assistant_tokens_schedule": "constant",
    "assistant_confidence_threshold": 0.4,
    "assistant_lookbehind": 10,
    "target_lookbehind": 10,
}
# Keys of a transformers generation config that do not choose tokens: metadata, what to return (generate
# reads return_dict_in_generate / output_scores / output_logits itself), cache and compile settings, and
# the start ids, which t2t takes from the model's config.
HF_GENERATION_IGNORED = frozenset(
    {
        "transformers_version",
        "_from_model_config",
        "return_dict_in_generate",
        "output_scores",
        "output_logits",
        "output_attentions",
        "output_hidden_states",
        "bos_token_id",
        "decoder_start_token_id",
        "cache_implementation",
        "cache_config",
        "max_cache_len",
        "compile_config",
        "disable_compile",
        "prefill_chunk_size",
        "is_assistant",
        "low_memory",
        "continuous_batching_config",
    }
)


@dataclass
class GenerationConfig(StrictConfig):
    """How to decode, with transformers' names and defaults (top_k=50 when sampling, length_penalty=1.0,
    early_stopping=False, 20 new tokens). `eos_token_id=None` / `pad_token_id=None` take the model's ids;
    `eos_token_id=[]` switches stopping at an end-of-sequence token off (every row then runs to the length
    limit). Two additions: `seed` (a private random generator, so sampling is reproducible without
    touching the global RNG) and `length_penalty_style`, which picks between the two published
    length-penalty conventions."""

    max_new_tokens: int | None = None  # None: max_length if given, else 20
    max_length: int | None = None  # HF style: prompt (decoder-only) or decoder start (T5) + new tokens
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    # "hf": score = logp / len**alpha (transformers); "gnmt": logp / ((5 + len) / 6)**alpha (Wu et al.
    # 2016, used by the T5 paper with beam 4 and alpha 0.6). len counts the generated tokens.
    length_penalty_style: str = "hf"
    early_stopping: bool | str = False
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    num_return_sequences: int = 1
    seed: int | None = None
    use_cache: bool = True

    def validate(self) -> None:
        self._validate_integers()
        if self.max_new_tokens is not None:
            check_range("max_new_tokens", self.max_new_tokens, 1)
        if self.max_length is not None:
            check_range("max_length", self.max_length, 1)
        check_range("min_new_tokens", self.min_new_tokens, 0)
        check_range("num_beams", self.num_beams, 1)
        check_range("num_return_sequences", self.num_return_sequences, 1)
        check_range("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        check_range("top_k", self.top_k, 0)
        check_choice("length_penalty_style", self.length_penalty_style, LENGTH_PENALTY_STYLES)
        check_choice("early_stopping", self.early_stopping, EARLY_STOPPING)
        # As in transformers, temperature matters only when sampling (greedy and beam search ignore it).
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature} must be > 0; use do_sample=False for greedy")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} is out of range (0, 1]")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition_penalty={self.repetition_penalty} must be > 0 (1.0: no penalty)")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ConfigError(
                f"num_return_sequences={self.num_return_sequences} is more than num_beams={self.num_beams}"
            )
        if self.num_beams == 1 and self.num_return_sequences > 1 and not self.do_sample:
            raise ConfigError(
                f"num_return_sequences={self.num_return_sequences} needs num_beams >= "
                f"{self.num_return_sequences} or do_sample=True (greedy search has one answer)"
            )

    def _validate_integers(self) -> None:
        """Integers past int64 fail deep inside torch (a TypeError on a tensor's size); NaN and infinite
        floats are refused by StrictConfig for every float field."""
        ints = [(name, getattr(self, name)) for name in INT_FIELDS] + [
            ("eos_token_id", i) for i in self.eos_ids
        ]
        for name, value in ints:
            if value is not None and not -sys.maxsize - 1 <= value <= sys.maxsize:  # torch's int64
                raise ConfigError(f"{name}={value} is out of range: at most {sys.maxsize} (64 bits)")

    @property
    def eos_ids(self) -> list[int]:
        """The end-of-sequence ids as a list (after `resolve`)."""
        eos = self.eos_token_id
        return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)

    def new_tokens(self, prompt_length: int) -> int:
        """How many tokens to generate at most; prompt_length is what max_length counts besides them."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.max_length is not None:
            if self.max_length <= prompt_length:
                raise ConfigError(
                    f"max_length={self.max_length} leaves no room after a prompt of {prompt_length} tokens; "
                    "use max_new_tokens"
                )
            return self.max_length - prompt_length
        return DEFAULT_MAX_NEW_TOKENS

    # ---- transformers' generation configs ----------------------------------------------------------------
    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults."""
        default = GenerationConfig().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    @classmethod
    def hf_values(cls, hf: Any, *, strict: bool = True, where: str = "generation_config") -> dict[str, Any]:
        """The t2t fields set by a transformers generation config: a `transformers.GenerationConfig`
        (only its values that differ from transformers' defaults count), or a dict of its keys (as in a
        generation_config.json; t2t's own field names are taken too). An option t2t does not implement,
        with a value that changes the output, is a ConfigError when `strict`, else a warning (and
        ignored)."""
        if isinstance(hf, GenerationConfig):
            return hf.to_dict()
        if hasattr(hf, "to_diff_dict"):
            data = hf.to_diff_dict()
        elif isinstance(hf, dict):
            data = hf
        else:
            raise ConfigError(
                f"{where} should be a GenerationConfig (t2t's or transformers') or a dict, "
                f"got {type(hf).__name__}"
            )
        names = set(cls.field_names())
        values: dict[str, Any] = {}
        unsupported = []
        for key, value in data.items():
            if key in names:
                values[key] = value
            elif key in HF_GENERATION_IGNORED or _neutral(key, value):
                continue
            else:
                unsupported.append(f"{key}={value!r}")
        if unsupported:
            message = (
                f"{where}: t2t does not implement {', '.join(unsupported)}; remove "
                f"{'it' if len(unsupported) == 1 else 'them'} (t2t implements {', '.join(sorted(names))})"
            )
            if strict:
                raise ConfigError(message)
            warnings.warn(f"{message}; ignored", stacklevel=3)
        return values

    @classmethod
    def from_hf(cls, hf: Any, *, strict: bool = True, where: str = "generation_config") -> GenerationConfig:
        """A t2t GenerationConfig from a transformers one (see `hf_values`), t2t's defaults elsewhere."""
        try:
            return cls.from_dict(cls.hf_values(hf, strict=strict, where=where))
        except ConfigError as err:
            if str(err).startswith(where):
                raise
            raise ConfigError(f"{where}: {err}") from None

    def to_hf(self) -> dict[str, Any]:
        """The changed fields as a generation_config.json holds them (transformers reads t2t's two extra
        fields, length_penalty_style and seed, as custom attributes and ignores them)."""
        return self.changed()


def _neutral(key: str, value: Any) -> bool:
    if value is None or value is False or value == [] or value == {}:
        return True
    return key in HF_NEUTRAL_GENERATION and value == HF_NEUTRAL_GENERATION[key]


__all__ = [
    "ARCHS",
    "DEFAULT_MAX_NEW_TOKENS",
    "FFNS",
    "HEADS",
    "HF_NAMES",
    "LENGTH_PENALTY_STYLES",
    "NORMS",
    "NORM_POSITIONS",
    "POSITIONS",
    "GenerationConfig",
    "ModelConfig",
    "ReadOnlyNameError",
]
