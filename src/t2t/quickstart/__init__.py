"""The quickstart: the whole text-to-text pipeline on built-in data in one command (`t2t quickstart`).

tokenizer -> span-corruption pretraining -> multi-task fine-tuning (with and without the pretrained
weights) -> evaluation of every task -> a few prompts -> a checkpoint that `t2t generate` / `t2t eval` use.
"""

from t2t.quickstart.plan import PLANS, QuickstartPlan
from t2t.quickstart.run import QuickstartReport, run_quickstart
from t2t.quickstart.tasks import QUICKSTART_MIXTURE, QUICKSTART_TASKS, register_quickstart_tasks

__all__ = [
    "PLANS",
    "QUICKSTART_MIXTURE",
    "QUICKSTART_TASKS",
    "QuickstartPlan",
    "QuickstartReport",
    "register_quickstart_tasks",
    "run_quickstart",
]
