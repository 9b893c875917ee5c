"""Rebuild data/builtin/quickstart/ (the quickstart's multi-task mixture) from its sources.

Deterministic: the same sources give the same files, byte for byte. Every task is split so that no test
input (nor its normalised form) occurs in training, and the rule-based tasks are split so that a test
item needs the rule rather than a memorised answer:

- translate: English number words -> German number words (num2words, LGPL; `pip install num2words==0.5.14`,
  the project's `data` extra). Split by number: no test number is seen in training.
- sentiment: real sentences (World English Bible verses and WordNet examples, public domain / WordNet
  licence) with rule-derived labels, taken from data/builtin/finetune/sentiment (built by
  scripts/build_finetune_data.py); split by book / synset there.
- question: questions over facts stated in a given context (names and cities are real, the facts are
  made up and drawn anew for each context); no fact of a test context occurs in a training context.
- summarize: short reports whose summary is the main event without its side remarks; test reports use
  people, places and events that never occur together in training.
- reasoning: modus ponens with a distractor rule (`If A, X gets P. If B, X gets Q. A. What happens to
  X?` -> P); test items use (subject, property) pairs that never occur in training, and both rules of an
  item use pairs of its own split, so which properties go with a subject never gives the answer away.

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
# Rule conditions of the reasoning task; the stated fact is one of them as a sentence.
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
    # Facts are drawn at random for each context, and no (person, place or job) fact of a test context
    # occurs in any training context: the answer has to be read from the context.
    train_pairs, test_pairs = pairs_split(rng, FIRST_NAMES, CITIES + JOBS, share=0.2)
    plan = {"train": (train_pairs, 3000), "validation": (test_pairs, 100), "test": (test_pairs, 200)}
    cities = set(CITIES)
    out: dict[str, list[Example]] = {}
    for split, (allowed, count) in plan.items():
        by_person: dict[str, list[str]] = {}
        for person, value in sorted(allowed):
            by_person.setdefault(person, []).append(value)
        people = sorted(by_person)
        rows = []
        for _ in range(count):
            facts = [(p, rng.choice(by_person[p])) for p in rng.sample(people, rng.randint(2, 4))]
            person, answer = rng.choice(facts)
            question = f"Where does {person} live?" if answer in cities else f"What does {person} work as?"
            context = " ".join(
                f"{p} lives in {v}." if v in cities else f"{p} works as a {v}." for p, v in facts
            )
            rows.append({"question": question, "context": context, "answers": [answer]})
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
    train_pairs, test_pairs = pairs_split(rng, SUBJECTS, PROPERTIES, share=0.2)
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    plan = {"train": (train_pairs, 3000), "validation": (test_pairs, 100), "test": (test_pairs, 200)}
    for split, (allowed, count) in plan.items():
        allowed_list = sorted(allowed)
        by_subject: dict[str, list[str]] = {}
        for subject, prop in allowed_list:
            by_subject.setdefault(subject, []).append(prop)
        while len(out[split]) < count:
            subject, answer = rng.choice(allowed_list)
            # The distractor is a pair of the same split too, so knowing which properties go with a
            # subject never tells the answer: only the rule whose condition is the stated fact does.
            other = rng.choice([p for p in by_subject[subject] if p != answer])
            cond, cond2 = rng.sample(CONDITIONS, 2)
            fact = cond[0].upper() + cond[1:]
            rules = [f"If {cond}, {subject} gets {answer}.", f"If {cond2}, {subject} gets {other}."]
            rng.shuffle(rules)
            text = f"{rules[0]} {rules[1]} {fact}. What happens to {subject}?"
            out[split].append({"inputs": text, "targets": answer})
    return out


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
