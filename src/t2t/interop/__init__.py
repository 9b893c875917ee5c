"""Conversion to and from Hugging Face transformers checkpoints (T5, BERT, GPT-2, Llama)."""
