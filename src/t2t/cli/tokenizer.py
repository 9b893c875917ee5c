"""`t2t tokenizer train | encode | decode | info`: make a vocabulary, look at what it does to text."""

from __future__ import annotations

import argparse
import sys
import time

from t2t.cli.common import (
    any_int,
    check_new_dir,
    example_epilog,
    finite_float,
    non_negative_int,
    positive_int,
)

_TRAIN_EXAMPLE = (
    'python -c "import this" > zen.txt',
    "t2t tokenizer train --input zen.txt --vocab-size 200 --out tok",
)
_ENCODE_EXAMPLE = ('t2t tokenizer encode --tokenizer tok "Simple is better than complex. <extra_id_0>"',)
_DECODE_EXAMPLE = ("t2t tokenizer decode --tokenizer tok --keep-special-tokens 66 57 6 199 1",)
_INFO_EXAMPLE = ("t2t tokenizer info --tokenizer tok",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenizer",
        help="train a vocabulary (T5 sentencepiece, BERT WordPiece, GPT-2 BPE); encode and decode text",
        description="Train a vocabulary from text files, or encode / decode text with a tokenizer "
        "directory (t2t's or Hugging Face's).",
        epilog=example_epilog(*_TRAIN_EXAMPLE, *_ENCODE_EXAMPLE, *_DECODE_EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")
    p.set_defaults(handler=lambda args: _help(p))

    t = _action(
        actions,
        "train",
        "train a vocabulary from UTF-8 text files",
        "Train a vocabulary and save it as a tokenizer directory that t2t and transformers both read.\n"
        "--vocab-size counts every token: special tokens and, for sentencepiece, the 100 sentinels\n"
        "<extra_id_0..99> (T5's layout: 32100 = a 32000-piece spiece.model + 100 sentinels). A model\n"
        "for it gets model_vocab_size rows: vocab_size rounded up to a multiple of 128 (32128).",
        _TRAIN_EXAMPLE,
    )
    t.add_argument("--input", action="extend", nargs="+", required=True, metavar="FILE", help="text file(s)")
    t.add_argument("--vocab-size", type=positive_int, required=True, help="tokens in all (see above)")
    t.add_argument("--out", required=True, help="directory to write the tokenizer to (a new or empty one)")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it holds files (a model's folder keeps its embedding size)",
    )
    t.add_argument(
        "--kind",
        choices=["sentencepiece", "wordpiece", "bpe"],
        default="sentencepiece",
        help="sentencepiece: T5 unigram (default); wordpiece: BERT; bpe: GPT-2 byte-level",
    )
    t.add_argument(
        "--extra-ids", type=non_negative_int, default=100, help="sentencepiece: number of sentinels (100)"
    )
    t.add_argument("--cased", action="store_true", help="wordpiece: keep case and accents (BERT cased)")
    t.add_argument(
        "--character-coverage",
        type=finite_float,
        default=1.0,
        help="sentencepiece: share of characters kept (1.0; 0.9995 for Chinese or Japanese)",
    )
    t.add_argument(
        "--max-piece-length",
        type=positive_int,
        default=16,
        help="sentencepiece: longest piece in characters (16, as T5; shorter keeps compounds apart)",
    )
    t.add_argument(
        "--min-frequency", type=non_negative_int, default=2, help="wordpiece, bpe: rarest merge learnt (2)"
    )
    t.set_defaults(handler=_train)

    e = _action(
        actions,
        "encode",
        "print the ids (and tokens) of texts",
        "Print the ids of each text, one line per text; texts come from the arguments or, without any,\n"
        "from standard input one per line.",
        _ENCODE_EXAMPLE,
    )
    e.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer or checkpoint directory")
    e.add_argument("texts", nargs="*", metavar="TEXT")
    e.add_argument("--tokens", action="store_true", help="also print the tokens, on a second line")
    e.add_argument("--no-special-tokens", action="store_true", help="leave out </s>, [CLS] .. [SEP]")
    e.set_defaults(handler=_encode)

    d = _action(
        actions,
        "decode",
        "print the text of ids",
        "Print the text of the ids given as arguments or, without any, of each line of standard input\n"
        "(ids separated by spaces). Special tokens are left out unless --keep-special-tokens; an id\n"
        "outside the vocabulary [0, vocab_size) is an error.",
        _DECODE_EXAMPLE,
    )
    d.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer or checkpoint directory")
    d.add_argument("ids", nargs="*", type=any_int, metavar="ID")
    d.add_argument("--keep-special-tokens", action="store_true", help="show </s>, <extra_id_N>, [SEP] ...")
    d.set_defaults(handler=_decode)

    i = _action(
        actions,
        "info",
        "print a tokenizer's sizes and special ids",
        "Print sizes and special ids.",
        _INFO_EXAMPLE,
    )
    i.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer or checkpoint directory")
    i.set_defaults(handler=_info)


def _action(
    actions, name: str, help: str, description: str, example: tuple[str, ...]
) -> argparse.ArgumentParser:
    return actions.add_parser(
        name,
        help=help,
        description=description,
        epilog=example_epilog(*example),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _train(args: argparse.Namespace) -> int:
    from t2t.tokenizer import TokenizerConfig, train_tokenizer

    check_new_dir(args.out, "--out ", args.overwrite)  # before the training, not after it
    config = TokenizerConfig(
        kind=args.kind,
        vocab_size=args.vocab_size,
        extra_ids=args.extra_ids,
        lowercase=not args.cased,
        character_coverage=args.character_coverage,
        max_piece_length=args.max_piece_length,
        min_frequency=args.min_frequency,
    )
    start = time.perf_counter()
    tokenizer = train_tokenizer(args.input, config)
    seconds = time.perf_counter() - start
    tokenizer.save_pretrained(args.out)
    files = ", ".join(args.input)
    print(f"trained a {tokenizer.kind} vocabulary on {files} in {seconds:.1f} s; saved to {args.out}")
    _summary(tokenizer, sample=_first_line(args.input[0]))
    if tokenizer.vocab_size < args.vocab_size:
        print(
            f"note: the corpus gave {tokenizer.vocab_size} tokens, fewer than --vocab-size {args.vocab_size}: "
            "it holds too few distinct pieces for more"
        )
    return 0


def _summary(tokenizer, sample: str | None = None) -> None:  # type: ignore[no-untyped-def]
    print(f"  vocab_size        {tokenizer.vocab_size} (tokens, special tokens and sentinels included)")
    print(f"  model_vocab_size  {tokenizer.model_vocab_size} (embedding rows: a multiple of 128)")
    roles = [(r, getattr(tokenizer, f"{r}_id")) for r in ("pad", "eos", "bos", "unk", "cls", "sep", "mask")]
    print("  special ids       " + " ".join(f"{r}={i}" for r, i in roles if i is not None))
    if tokenizer.num_sentinels:
        last = tokenizer.num_sentinels - 1
        print(
            f"  sentinels         <extra_id_0>={tokenizer.sentinel_id(0)} .. "
            f"<extra_id_{last}>={tokenizer.sentinel_id(last)}"
        )
    if sample:
        print(f"  sample            {sample!r}")
        print(f"    tokens          {tokenizer.tokenize(sample)}")
        print(f"    ids             {tokenizer.encode(sample)}")


def _first_line(path: str, limit: int = 60) -> str | None:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.strip()[:limit]
    return None


def _stdin_lines() -> list[tuple[int, str]]:
    """Numbered lines of standard input; text that is not UTF-8 is one clear error."""
    from t2t.errors import DataError

    try:
        return list(enumerate(sys.stdin, 1))
    except UnicodeDecodeError as err:
        raise DataError(
            f"<stdin>: not UTF-8 text ({err.reason} at byte {err.start}); pipe UTF-8 text"
        ) from None


def _encode(args: argparse.Namespace) -> int:
    from t2t.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    texts = args.texts or [line.rstrip("\n") for _, line in _stdin_lines()]
    add = not args.no_special_tokens
    for ids in tokenizer.encode_batch(texts, add_special_tokens=add):
        print(" ".join(map(str, ids)))
        if args.tokens:
            print(" ".join(tokenizer.id_to_token(i) or "?" for i in ids))
    return 0


def _decode(args: argparse.Namespace) -> int:
    from t2t.errors import DataError
    from t2t.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    rows = [("", args.ids)] if args.ids else []
    if not args.ids:
        for number, line in _stdin_lines():
            try:
                rows.append((f"<stdin>:{number}: ", [int(x) for x in line.split()]))
            except ValueError:
                raise DataError(f"<stdin>:{number}: ids should be integers separated by spaces") from None
    for where, ids in rows:
        bad = tokenizer.first_unknown_id(ids)
        if bad is not None:
            raise DataError(
                f"{where}id {bad} is outside the vocabulary [0, {tokenizer.vocab_size}) of "
                f"{args.tokenizer}; give ids that its encode produced"
            )
    for text in tokenizer.decode_batch(
        [ids for _, ids in rows], skip_special_tokens=not args.keep_special_tokens
    ):
        print(text)
    return 0


def _info(args: argparse.Namespace) -> int:
    from t2t.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    print(f"{args.tokenizer}: {tokenizer.kind} ({tokenizer.hf_class})")
    _summary(tokenizer)
    return 0
