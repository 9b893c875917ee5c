"""Rebuild data/builtin/quickstart/ (the quickstart's multi-task mixture) from its sources.

Deterministic: the same sources give the same files, byte for byte. Every task is split so that no test
input (nor its normalised form) occurs in training, and the rule-based tasks are split so that a test
item needs the rule rather than a memorised answer:

- translate: English number words -> German number words (num2words, LGPL; `pip install num2words==0.5.14`,
  the project's `data` extra). Split by number: no test number is seen in training.
- sentiment: real sentences (World English Bible verses and WordNet examples, public domain / WordNet
  licence) with rule-derived labels, taken from data/builtin/finetune/sentiment (built by
  scripts/build_finetune_data.py); split by book / synset there.
- question: a person's home or another person's job, asked about a context that states both (names,
  cities and jobs are real, the facts are made up and drawn anew for each context); no fact of a test
  context occurs in a training context.
- summarize: short reports whose summary is the main event without its side remarks; test reports use
  people, places and events that never occur together in training.
- reasoning: a rule and a fact that affirms its condition (modus ponens: `If A, X gets P. A. What
  happens to X?` -> P) or denies it (`... Not A ...` -> `nothing follows`); test items use (subject,
  property) pairs that never occur in training.

    .venv/bin/python scripts/build_quickstart_data.py [--out data/builtin/quickstart]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261123
Example = dict[str, Any]


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = words(
    "Anna Ben Clara David Emma Felix Greta Hugo Ida Jonas Karla Leo Mia Noah Olga Paul Quinn Rosa Sam Tina "
    "Umar Vera Walter Xenia Yusuf Zoe Aaron Bella Carlos Dora Elias Fiona Georg Hanna Igor Julia Kevin Lena "
    "Marco Nina Oscar Petra Rafael Sara Tobias Ursula Viktor Wanda Amir Beatrix Cyril Daria Emil Frida "
    "Gustav Helga Ivan Jana Karim Lucia Milan Nora Otto Pia Ruben Selma Theo Ulla Vincent Wilma"
)
CITIES = words(
    "Paris Rome Berlin Madrid Lisbon Vienna Prague Warsaw Oslo Dublin Athens Cairo Tokyo Seoul Lima Quito "
    "Bogota Havana Delhi Dhaka Hanoi Manila Nairobi Dakar Accra Tunis Rabat Ankara Baku Tbilisi Kyiv Minsk "
    "Riga Vilnius Tallinn Helsinki Stockholm Copenhagen Amsterdam Brussels Bern Zagreb Belgrade Sofia "
    "Bucharest Budapest Bratislava Ljubljana Sarajevo Skopje Tirana Valletta Reykjavik Ottawa Boston Denver "
    "Chicago Dallas Houston Miami Seattle Sydney Perth Auckland Santiago Caracas Montevideo Asuncion"
)
JOBS = words(
    "baker teacher doctor nurse pilot farmer painter lawyer singer writer tailor plumber chemist dentist "
    "engineer architect butcher carpenter gardener librarian mechanic musician photographer sailor "
    "pharmacist journalist electrician fisherman jeweler potter"
)
EVENTS = (
    ("opened", "a new shop"),
    ("won", "the city marathon"),
    ("painted", "a large mural"),
    ("found", "a lost dog"),
    ("built", "a wooden bridge"),
    ("sold", "an old house"),
    ("wrote", "a short novel"),
    ("planted", "a small orchard"),
    ("repaired", "the town clock"),
    ("started", "a chess club"),
    ("baked", "a giant cake"),
    ("rescued", "a stranded cat"),
    ("launched", "a local newspaper"),
    ("restored", "an old church"),
    ("organised", "a street festival"),
    ("discovered", "a rare plant"),
    ("designed", "a new park"),
    ("recorded", "a folk album"),
)
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
# Rule conditions of the reasoning task; the stated fact is one of them or its negation, as a sentence.
CONDITIONS = (
    "it rains",
    "the sun shines",
    "it snows",
    "the wind blows",
    "the river floods",
    "the night falls",
    "the fire burns",
    "the ice melts",
    "the storm comes",
    "the fog rises",
    "the frost bites",
    "the heat builds",
)
SUBJECTS = tuple(
    "the " + noun
    for noun in words(
        "ground road grass roof field garden street bridge car tent window forest lake wall path boat bench "
        "fence river hill"
    )
)
UNKNOWN = "nothing follows"  # the answer when the fact denies the condition
PROPERTIES = words(
    "wet dry cold warm muddy icy dark bright slippery dusty frozen hot soft hard green brown white black "
    "quiet loud damp shiny"
)


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


def pairs_split(rng: random.Random, left: list[str], right: list[str], share: float) -> tuple[set, set]:
    """Split the (left, right) grid so that held-out pairs never occur in training."""
    grid = [(a, b) for a in left for b in right]
    rng.shuffle(grid)
    cut = int(len(grid) * share)
    return set(grid[cut:]), set(grid[:cut])


def question_task(rng: random.Random) -> dict[str, list[Example]]:
    # Each context states one person's home and another person's job (in either order, sometimes with a
    # side remark); the question asks for one of them. No (person, place or job) fact of a test context
    # occurs in any training context, so the answer has to be read from the context, not remembered.
    train_pairs, test_pairs = pairs_split(rng, FIRST_NAMES, CITIES + JOBS, share=0.2)
    plan = {"train": (train_pairs, 3000), "validation": (test_pairs, 100), "test": (test_pairs, 200)}
    out: dict[str, list[Example]] = {}
    for split, (allowed, count) in plan.items():
        homes = sorted((p, v) for p, v in allowed if v in CITIES)
        jobs = sorted((p, v) for p, v in allowed if v in JOBS)
        rows = []
        while len(rows) < count:
            (home_person, city), (job_person, job) = rng.choice(homes), rng.choice(jobs)
            if home_person == job_person:
                continue
            facts = [f"{home_person} lives in {city}.", f"{job_person} works as a {job}."]
            rng.shuffle(facts)
            if rng.random() < 0.3:
                facts.insert(rng.randint(0, 2), rng.choice(FILLERS))
            if rng.random() < 0.5:
                question, answer = f"Where does {home_person} live?", city
            else:
                question, answer = f"What does {job_person} work as?", job
            rows.append({"question": question, "context": " ".join(facts), "answers": [answer]})
        out[split] = rows
    return out


def summarize_task(rng: random.Random) -> dict[str, list[Example]]:
    train_pairs, test_pairs = pairs_split(rng, FIRST_NAMES, [e[0] for e in EVENTS], share=0.15)
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    plan = {"train": (train_pairs, 3000), "validation": (test_pairs, 100), "test": (test_pairs, 200)}
    for split, (allowed, count) in plan.items():
        allowed_list = sorted(allowed)
        while len(out[split]) < count:
            name, verb = rng.choice(allowed_list)
            thing = dict(EVENTS)[verb]
            city, job = rng.choice(CITIES), rng.choice(JOBS)
            fillers = rng.sample(FILLERS, 2)
            report = f"{fillers[0]} {name}, a {job} from {city}, {verb} {thing} on Sunday. {fillers[1]}"
            out[split].append({"inputs": report, "targets": f"{name} {verb} {thing}."})
    return out


def reasoning_task(rng: random.Random) -> dict[str, list[Example]]:
    # One rule and a fact: the fact affirms the rule's condition (modus ponens: the consequence follows)
    # or denies it (nothing follows: denying the antecedent proves nothing), half and half. Test items
    # use (subject, property) pairs that never occur in training, so the property must be read from
    # the rule, and whether it follows from the fact.
    train_pairs, test_pairs = pairs_split(rng, SUBJECTS, PROPERTIES, share=0.2)
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    plan = {"train": (train_pairs, 3000), "validation": (test_pairs, 100), "test": (test_pairs, 200)}
    for split, (allowed, count) in plan.items():
        allowed_list = sorted(allowed)
        while len(out[split]) < count:
            subject, prop = rng.choice(allowed_list)
            cond = rng.choice(CONDITIONS)
            affirmed = rng.random() < 0.5
            fact = cond if affirmed else negate(cond)
            text = (
                f"If {cond}, {subject} gets {prop}. {fact[0].upper() + fact[1:]}. What happens to {subject}?"
            )
            out[split].append({"inputs": text, "targets": prop if affirmed else UNKNOWN})
    return out


def negate(condition: str) -> str:
    """'the sun shines' -> 'the sun does not shine' (every condition is a subject and one -s verb)."""
    *subject, verb = condition.split()
    return " ".join([*subject, "does not", verb[:-1]])


def split_list(rows: list[Example], *, test: int, validation: int) -> dict[str, list[Example]]:
    return {
        "test": rows[:test],
        "validation": rows[test : test + validation],
        "train": rows[test + validation :],
    }


TASKS: dict[str, Callable[[random.Random], dict[str, list[Example]]]] = {
    "translate": translate_task,
    "sentiment": sentiment_task,
    "question": question_task,
    "summarize": summarize_task,
    "reasoning": reasoning_task,
}


def write_jsonl(path: Path, rows: list[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data/builtin/quickstart")
    args = parser.parse_args()
    for name, build in TASKS.items():
        splits = build(random.Random(f"{SEED}-{name}"))
        for split, rows in splits.items():
            write_jsonl(args.out / name / f"{split}.jsonl", rows)
        print(name, {split: len(rows) for split, rows in splits.items()})


if __name__ == "__main__":
    main()
