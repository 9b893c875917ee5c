"""Fine-tuning as BERT and GPT did it: the features of task heads and GPT's input transformations,
pretraining examples from a corpus file, their scoring, and few-shot prompting; see docs/finetuning.md.
Training itself is t2t.train's Trainer (`t2t train --config configs/finetune/NAME.yaml`)."""
