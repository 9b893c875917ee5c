"""The experiments lab: the claims of the T5, BERT, GPT and Llama papers, measured with t2t.

Each experiment is a declarative file, configs/experiments/NAME.yaml (t2t.experiments.spec): the
variants, what to vary, what to measure, its budget. `t2t experiment NAME` runs every run through the
one Trainer (t2t.experiments.run), aggregates the seeds and states the verdict
(t2t.experiments.analysis), and writes OUT/report.md, OUT/results.json and the plots.

    from t2t.experiments import load_spec, run_experiment
    result = run_experiment(load_spec("norm_position", quick=True), "runs/exp")
    print(result.analysis.verdict)
"""

from t2t.experiments.runner import ExperimentResult, run_experiment
from t2t.experiments.self_training import SelfTrainingConfig, pseudo_label, self_train
from t2t.experiments.spec import ExperimentSpec, list_experiments, load_spec

__all__ = [
    "ExperimentResult",
    "ExperimentSpec",
    "SelfTrainingConfig",
    "list_experiments",
    "load_spec",
    "pseudo_label",
    "run_experiment",
    "self_train",
]
