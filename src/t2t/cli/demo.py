"""`t2t demo`: build a tiny model from a preset, run a forward pass and a short greedy generation."""

from __future__ import annotations

import argparse

from t2t.cli.common import example_epilog, int_at_least, non_negative_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="build a tiny model from a preset and run a forward pass and a generation",
        description="Build a randomly initialised model from a preset, run one forward pass and a greedy "
        "generation with the KV cache, and print its size and output.",
        epilog=example_epilog("t2t demo --preset t5-tiny", "t2t demo --preset gpt2-tiny --new-tokens 4"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="t5-tiny", help="model preset (default: t5-tiny)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed of the weights and the input (0)"
    )
    p.add_argument(
        "--new-tokens", type=int_at_least(1, 1024), default=8, help="tokens to generate (8; at most 1024)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from t2t.model.build import build_model
    from t2t.model.models import DecoderLM, EncoderDecoderLM
    from t2t.presets import preset

    torch.manual_seed(args.seed)
    model = build_model(preset(args.preset)).eval()
    cfg = model.config
    print(f"{args.preset}: arch={cfg.arch}, {model.num_parameters():,} parameters")
    ids = torch.randint(3, cfg.vocab_size, (1, 10))
    with torch.no_grad():
        if isinstance(model, EncoderDecoderLM):
            out = model(ids, decoder_input_ids=torch.tensor([[cfg.decoder_start_id]]))
            memory = model.encode(ids)
            cache, token, generated = (
                model.new_cache(args.new_tokens),
                torch.tensor([[cfg.decoder_start_id]]),
                [],
            )
            for step in range(args.new_tokens):
                _, logits = model.decode(token, memory if step == 0 else None, cache=cache)
                token = logits[:, -1:].argmax(-1)
                generated.append(int(token))
        elif isinstance(model, DecoderLM):
            out = model(ids)
            cache, token, generated = model.new_cache(), ids, []
            for _ in range(args.new_tokens):
                token = model(token, cache=cache).logits[:, -1:].argmax(-1)
                generated.append(int(token))
        else:
            out = model(ids)
            generated = out.logits[0].argmax(-1).tolist()
    assert out.logits is not None
    print(f"input ids:  {ids[0].tolist()}")
    print(f"logits:     {tuple(out.logits.shape)}, finite={bool(torch.isfinite(out.logits).all())}")
    print(f"generated:  {generated}")
    return 0
