"""Parameter-efficient fine-tuning: LoRA and bottleneck adapters on t2t's shared blocks, and adapter
directories in t2t's and Hugging Face PEFT's layouts (see docs/peft.md)."""

from t2t.peft.adapter import AdapterLinear
from t2t.peft.config import PARTS, PeftConfig
from t2t.peft.files import has_adapter, load_adapter, load_peft, save_adapter
from t2t.peft.inject import apply_peft, merge, parameter_counts, without_adapters
from t2t.peft.lora import LoRALinear

__all__ = [
    "PARTS",
    "AdapterLinear",
    "LoRALinear",
    "PeftConfig",
    "apply_peft",
    "has_adapter",
    "load_adapter",
    "load_peft",
    "merge",
    "parameter_counts",
    "save_adapter",
    "without_adapters",
]
