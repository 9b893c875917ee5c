"""Rebuild data/builtin/finetune/ (the small datasets of the BERT and GPT fine-tuning recipes) from their
offline sources. Deterministic: the same packages give the same files, byte for byte.

Sources (install once: `apt-get install wordnet-base sword-text-web sword-text-kjv` and
`pip install vaderSentiment==3.3.2`):
- World English Bible (public domain) and King James Version (public domain): SWORD zText modules.
- WordNet 3.0 (WordNet licence, permissive): glosses, example sentences, instance nouns by lexicographer file.
- VADER sentiment lexicon (MIT): word valences for the rule-derived sentiment labels.

Every split keeps test items out of training: Bible tasks by book (TEST_BOOKS), WordNet tasks by synset.
The labels are derived by rules (documented in docs/finetuning.md): no human labels exist offline.

    .venv/bin/python scripts/build_finetune_data.py [--out data/builtin/finetune]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

SWORD = Path("/usr/share/sword/modules/texts/ztext")
WEB, KJV = "engWEB2015eb", "engKJV2006eb"
WORDNET = Path("/usr/share/wordnet")
# Held-out books: no verse of these is in any training split nor in the pretraining corpus.
TEST_BOOKS = ("Ruth", "Esth", "Eccl", "Jonah", "Mark", "Phil", "Jas", "1John")
CORPUS_BYTES = 650_000
# Training examples per task. The pair, choice and QA tasks need many different examples for a small model
# trained from scratch to learn the cross-sentence matching instead of memorising (docs/finetuning.md).
TRAIN_SIZE = {"paraphrase": 20000, "similarity": 20000, "entailment": 12000, "choice": 10000}
QA_PARAGRAPHS = 1000  # training paragraphs of definitions (test: 60)
NEGATORS = {"not", "no", "never", "nor", "none", "nothing", "neither", "without", "cannot", "n't"}
AUXILIARIES = ("is", "was", "are", "were", "will", "shall", "can", "could", "would", "should", "may", "might")
STOPWORDS = set(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "they",
        "this",
        "to",
        "unto",
        "upon",
        "was",
        "we",
        "were",
        "which",
        "who",
        "will",
        "with",
        "ye",
        "you",
        "your",
        "shall",
        "thou",
        "thee",
        "thy",
    ]
)
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+|[^\sA-Za-z\d]")


# ---- sources ----------------------------------------------------------------------------------------
def sword_verses(module: str) -> dict[tuple[str, int, int], str]:
    """{(book, chapter, verse): plain text} of a SWORD zText module (footnotes and titles removed)."""
    out: dict[tuple[str, int, int], str] = {}
    for testament in ("ot", "nt"):
        base = SWORD / module / testament
        bzs, bzv, bzz = (Path(f"{base}.{ext}").read_bytes() for ext in ("bzs", "bzv", "bzz"))
        blocks = [struct.unpack("<III", bzs[i : i + 12]) for i in range(0, len(bzs), 12)]
        cache: dict[int, bytes] = {}
        book, chapter, verse = "", 0, 0
        for i in range(0, len(bzv), 10):
            block, offset, size = struct.unpack("<IIH", bzv[i : i + 10])
            if size == 0:
                verse += 1 if chapter else 0
                continue
            if block not in cache:
                start, length, _ = blocks[block]
                cache[block] = zlib.decompress(bzz[start : start + length])
            raw = cache[block][offset : offset + size].decode("utf-8")
            heading = re.search(r'<chapter[^>]*osisID="([^".]+)\.(\d+)"[^>]*sID=', raw)
            if heading:
                book, chapter, verse = heading.group(1), int(heading.group(2)), 0
                continue
            if re.search(r'<div[^>]*sID="[^"]*"[^>]*type="book"|type="book"[^>]*sID=', raw) or not chapter:
                continue
            verse += 1
            text = _plain(raw)
            if text:
                out[(book, chapter, verse)] = text
    return out


def _plain(osis: str) -> str:
    osis = re.sub(r"<note\b.*?</note>", "", osis, flags=re.S)
    osis = re.sub(r"<title\b.*?</title>", "", osis, flags=re.S)
    text = re.sub(r"<[^>]+>", "", osis)
    text = (
        text.replace("\u00b6", "")
        .replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )
    return re.sub(r"\s+", " ", text).strip()


def wordnet_synsets(pos: str) -> Iterator[dict]:
    """Synsets of data.{pos}: lemmas, lexicographer file number, pointer symbols, gloss and examples."""
    with open(WORDNET / f"data.{pos}", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):
                continue  # licence header
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            count = int(fields[3], 16)
            lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * k]).replace("_", " ") for k in range(count)]
            pointers = int(fields[4 + 2 * count])
            start = 5 + 2 * count
            symbols = [fields[start + 4 * k] for k in range(pointers)]
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = gloss.split(";")[0].strip().strip('"').strip()
            yield {
                "offset": fields[0],
                "lexfile": int(fields[1]),
                "lemmas": lemmas,
                "pointers": symbols,
                "definition": definition,
                "examples": [e.strip() for e in examples],
            }


def vader_lexicon() -> dict[str, float]:
    import vaderSentiment

    path = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    lexicon = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, value, *_ = line.split("\t")
        if word.isalpha():
            lexicon[word] = float(value)
    return lexicon


# ---- helpers ----------------------------------------------------------------------------------------
def bucket(key: str) -> float:
    """A stable number in [0, 1) from a key, for splits that do not depend on iteration order."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def words(text: str) -> list[str]:
    return WORD.findall(text)


def content(text: str) -> set[str]:
    return {w.lower() for w in words(text) if w.isalpha() and w.lower() not in STOPWORDS}


def dice(a: str, b: str) -> float:
    x, y = content(a), content(b)
    return 2 * len(x & y) / (len(x) + len(y)) if x and y else 0.0


def clauses(text: str, low: int = 4) -> list[str]:
    parts = [p.strip() for p in re.split(r"[,;:]", text)]
    return [p.rstrip(".!?\"' ") for p in parts if len(p.split()) >= low]


def is_test_book(book: str) -> bool:
    return book in TEST_BOOKS


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_tsv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def by_chapter(verses: dict[tuple[str, int, int], str]) -> dict[tuple[str, int], list[tuple[int, str]]]:
    chapters: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
    for (book, chapter, verse), text in verses.items():
        chapters[(book, chapter)].append((verse, text))
    return chapters


# ---- tasks ------------------------------------------------------------------------------------------
def pretraining_corpus(web: dict, out: Path) -> None:
    """Training books of the WEB, one verse per line, a blank line between chapters (documents for NSP)."""
    docs, size = [], 0
    rng = random.Random(0)
    chapters = [(k, v) for k, v in by_chapter(web).items() if not is_test_book(k[0])]
    rng.shuffle(chapters)
    for _, verses in chapters:
        doc = "\n".join(text for _, text in verses)
        if size + len(doc) > CORPUS_BYTES:
            break
        docs.append(doc)
        size += len(doc.encode()) + 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def sentiment(web: dict, examples: list[tuple[str, str]], lexicon: dict[str, float], out: Path) -> None:
    """SST-2-like: a sentence is positive/negative when its lexicon words agree (no negation)."""
    rows: dict[str, list[list[str]]] = {"train": [], "test": []}
    sources = [(f"{b}.{c}.{v}", t, "test" if is_test_book(b) else "train") for (b, c, v), t in web.items()]
    sources += [(key, t, "test" if bucket(key) < 0.12 else "train") for key, t in examples]
    for _, text, split in sources:
        tokens = [w.lower() for w in words(text)]
        negated = NEGATORS & set(tokens) or any(t.endswith("n't") for t in tokens)
        if not 4 <= len(tokens) <= 40 or negated or "\t" in text:
            continue
        values = [lexicon[t] for t in tokens if t in lexicon]
        if not values or (min(values) < 0 < max(values)) or abs(sum(values)) < 1.5:
            continue
        rows[split].append([text, "positive" if sum(values) > 0 else "negative"])
    for split, items in rows.items():
        write_tsv(
            out / f"{split}.tsv",
            ["sentence", "label"],
            _balanced(items, 1, 3000 if split == "train" else 400),
        )


def _balanced(rows: list[list], label_col: int, total: int, seed: int = 0) -> list[list]:
    by_label: dict[str, list] = defaultdict(list)
    for row in rows:
        by_label[row[label_col]].append(row)
    per = min(total // len(by_label), *(len(v) for v in by_label.values()))
    rng = random.Random(seed)
    picked = [row for label in sorted(by_label) for row in rng.sample(by_label[label], per)]
    rng.shuffle(picked)
    return picked


def acceptability(examples: list[tuple[str, str]], out: Path) -> None:
    """CoLA-like: real sentences (1) and the same kind of sentences with words moved out of order (0)."""
    rows: dict[str, list[list]] = {"train": [], "test": []}
    rng = random.Random(1)
    for key, text in examples:
        tokens = text.split()
        if not 4 <= len(tokens) <= 20 or "\t" in text:
            continue
        split = "test" if bucket(key) < 0.12 else "train"
        if rng.random() < 0.5:
            rows[split].append([text, 1])
            continue
        movable = [k for k, t in enumerate(tokens) if t.lower() in STOPWORDS]
        if not movable:
            continue
        broken = list(tokens)
        i = rng.choice(movable)  # a moved function word breaks the syntax; a moved noun may not
        word = broken.pop(i)
        j = rng.choice([k for k in range(len(broken) + 1) if abs(k - i) > 1] or [0])
        broken.insert(j, word)
        if broken != tokens:
            rows[split].append([" ".join(broken), 0])
    for split, items in rows.items():
        write_tsv(
            out / f"{split}.tsv",
            ["sentence", "label"],
            _balanced(items, 1, 3000 if split == "train" else 400),
        )


def paraphrase_and_similarity(web: dict, kjv: dict, para_out: Path, sts_out: Path) -> None:
    """MRPC-like (same verse in two translations = paraphrase; a nearby verse = not) and STS-B-like
    (a verse paired with the same, a nearby or a distant verse of the other translation; score = 5 x Dice
    overlap of content words)."""
    rng = random.Random(2)
    para: dict[str, list[list]] = {"train": [], "test": []}
    sts: dict[str, list[list]] = {"train": [], "test": []}
    refs = [r for r in web if r in kjv]
    by_chapter_refs: dict[tuple[str, int], list] = defaultdict(list)
    for ref in refs:
        by_chapter_refs[ref[:2]].append(ref)
    for ref in refs:
        a, same = web[ref], kjv[ref]
        if not 5 <= len(a.split()) <= 45 or "\t" in a + same or dice(a, same) < 0.2:
            continue  # a low overlap for the same reference means the versifications differ here
        split = "test" if is_test_book(ref[0]) else "train"
        neighbours = [r for r in by_chapter_refs[ref[:2]] if 0 < abs(r[2] - ref[2]) <= 3]
        if not neighbours:
            continue
        other = kjv[rng.choice(neighbours)]
        para[split].append([a, same, 1] if rng.random() < 0.5 else [a, other, 0])
        kind = rng.random()
        b = same if kind < 0.4 else other if kind < 0.8 else kjv[_same_split(rng.choice(refs), split, refs)]
        sts[split].append([a, b, round(5 * dice(a, b), 2)])
    for rows in (para, sts):  # the same verse text can stand in two books (and so in both splits)
        test_texts = {text for row in rows["test"] for text in row[:2]}
        rows["train"] = [row for row in rows["train"] if not test_texts & set(row[:2])]
    for split in ("train", "test"):
        size = TRAIN_SIZE["paraphrase"] if split == "train" else 400
        write_tsv(
            para_out / f"{split}.tsv", ["sentence1", "sentence2", "label"], _balanced(para[split], 2, size)
        )
        size = TRAIN_SIZE["similarity"] if split == "train" else 400
        rows = random.Random(3).sample(sts[split], min(size, len(sts[split])))
        write_tsv(sts_out / f"{split}.tsv", ["sentence1", "sentence2", "score"], rows)


def _same_split(ref: tuple, split: str, refs: list) -> tuple:
    """`ref` if it lies in `split`'s books, else one that does (its own generator, so the main draws stay
    as they were): a distant verse never brings a test book into training, nor the reverse."""
    if ("test" if is_test_book(ref[0]) else "train") == split:
        return ref
    pool = [r for r in refs if is_test_book(r[0]) == (split == "test")]
    return random.Random(f"{ref}").choice(pool)


def _unseen(train: list, test: list, key) -> list:  # type: ignore[no-untyped-def]
    """Training items whose text (key) is not also a test item's: the same verse text can stand in two
    books, and a lemma in two synsets."""
    seen = {key(item) for item in test}
    return [item for item in train if key(item) not in seen]


def entailment(web: dict, out: Path) -> None:
    """MNLI-like: a clause of the premise (entailment), that clause with its negation toggled
    (contradiction), or a clause of another verse of the chapter (neutral)."""
    rng = random.Random(4)
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    chapters = by_chapter(web)
    for (book, _), verses in sorted(chapters.items()):
        split = "test" if is_test_book(book) else "train"
        for index, (_, premise) in enumerate(verses):
            parts = clauses(premise)
            if not 8 <= len(premise.split()) <= 45 or not parts:
                continue
            clause = rng.choice(parts)
            kind = rng.choice(["entailment", "contradiction", "neutral"])
            if kind == "contradiction":
                hypothesis = _toggle_negation(clause)
                if hypothesis is None:
                    continue
            elif kind == "neutral":
                others = [c for j, (_, t) in enumerate(verses) if j != index for c in clauses(t)]
                others = [c for c in others if dice(c, premise) < 0.3]
                if not others:
                    continue
                hypothesis = rng.choice(others)
            else:
                hypothesis = clause
            rows[split].append({"premise": premise, "hypothesis": hypothesis, "label": kind})
    rows["train"] = _unseen(rows["train"], rows["test"], lambda r: r["premise"])
    for split, items in rows.items():
        keyed = [[r["premise"], r["hypothesis"], r["label"]] for r in items]
        picked = _balanced(keyed, 2, TRAIN_SIZE["entailment"] if split == "train" else 450)
        write_jsonl(
            out / f"{split}.jsonl", [{"premise": p, "hypothesis": h, "label": y} for p, h, y in picked]
        )


def _toggle_negation(clause: str) -> str | None:
    tokens = clause.split()
    for i, token in enumerate(tokens):
        if token.lower() == "not" and i > 0:
            return " ".join(tokens[:i] + tokens[i + 1 :])
    for i, token in enumerate(tokens):
        if token.lower() in AUXILIARIES:
            return " ".join([*tokens[: i + 1], "not", *tokens[i + 1 :]])
    return None


def multiple_choice(web: dict, out: Path) -> None:
    """SWAG-like: the first part of a verse and four endings, the verse's own and three of other verses
    of the same book."""
    rng = random.Random(5)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    per_book: dict[str, list[str]] = defaultdict(list)
    for (book, _, _), text in sorted(web.items()):
        match = re.match(r"^(.{25,}?[,;:])\s+(.{15,})$", text)
        if match and len(text.split()) <= 30:
            splits["test" if is_test_book(book) else "train"].append((book, match.group(1)))
            per_book[book].append(match.group(2))
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    for (book, _, _), text in sorted(web.items()):
        match = re.match(r"^(.{25,}?[,;:])\s+(.{15,})$", text)
        if not match or len(text.split()) > 30:
            continue
        context, ending = match.groups()
        pool = [e for e in per_book[book] if e != ending]
        if len(pool) < 3:
            continue
        endings = [*rng.sample(pool, 3)]
        label = rng.randrange(4)
        endings.insert(label, ending)
        rows["test" if is_test_book(book) else "train"].append(
            {"context": context, "endings": endings, "label": label}
        )
    rows["train"] = _unseen(rows["train"], rows["test"], lambda r: r["context"])
    for split, items in rows.items():
        write_jsonl(
            out / f"{split}.jsonl",
            random.Random(6).sample(
                items, min(len(items), TRAIN_SIZE["choice"] if split == "train" else 400)
            ),
        )


def entity_gazetteer(nouns: list[dict]) -> dict[str, str]:
    """Capitalised WordNet nouns by type: instances of people (PER), places (LOC), groups (ORG); other
    capitalised people and groups (Israelite, Pharisee) are MISC, as CoNLL-2003 tags nationalities."""
    types = {18: "PER", 15: "LOC", 14: "ORG"}
    gazetteer: dict[str, str] = {}
    for synset in nouns:
        kind = types.get(synset["lexfile"])
        if kind is None:
            continue
        instance = "@i" in synset["pointers"]
        for lemma in synset["lemmas"]:
            if lemma[:1].isupper() and lemma not in gazetteer and all(w[:1].isupper() for w in lemma.split()):
                gazetteer[lemma] = kind if instance else ("MISC" if kind in ("PER", "ORG") else kind)
    return gazetteer


def tagging(web: dict, gazetteer: dict[str, str], out: Path) -> None:
    """CoNLL-2003 files: WEB verses tagged BIO from the gazetteer, longest match first (sentence-initial
    words only when the gazetteer has them)."""
    longest = max(len(k.split()) for k in gazetteer)
    docs: dict[str, list[list[tuple[str, str]]]] = {"train": [], "test": []}
    rng = random.Random(7)
    for (book, _, _), text in sorted(web.items()):
        tokens = words(text)
        if not 4 <= len(tokens) <= 50:
            continue
        tags = ["O"] * len(tokens)
        i = 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                name = " ".join(tokens[i : i + n])
                kind = gazetteer.get(name)
                if kind and name[:1].isupper():
                    tags[i : i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        if any(t != "O" for t in tags):
            docs["test" if is_test_book(book) else "train"].append(list(zip(tokens, tags)))
    for split, sentences in docs.items():
        picked = rng.sample(sentences, min(len(sentences), 2000 if split == "train" else 400))
        lines = ["-DOCSTART- -X- -X- O", ""]
        for sentence in picked:
            lines += [f"{w} _ _ {t}" for w, t in sentence] + [""]
        (out / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (out / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")


def question_answering(nouns: list[dict], out: Path) -> None:
    """SQuAD v1.1-style JSON: paragraphs of WordNet definitions ("A river is a large natural stream of
    water."), questions asking for a definition or for the word defined; split by synset."""
    rng = random.Random(8)
    pool: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for synset in nouns:
        lemma = synset["lemmas"][0]
        definition = synset["definition"]
        if not lemma.isalpha() or not lemma.islower() or not 3 <= len(definition.split()) <= 14:
            continue
        if not re.fullmatch(r"[a-z][a-z ,()'-]*", definition):
            continue
        pool["test" if bucket(synset["offset"]) < 0.12 else "train"].append((lemma, definition))
    data: dict[str, list[dict]] = {"train": [], "test": []}
    used: dict[str, int] = {}
    for split, items in pool.items():
        rng.shuffle(items)
        if split == "train":  # a lemma or definition of two synsets stays out of training (after the
            # shuffle, so the generator's draws and the test split are as they were)
            test_words = {w for pair in pool["test"] for w in pair}
            items[:] = [(lemma, d) for lemma, d in items if lemma not in test_words and d not in test_words]
        used[split] = _qa_paragraphs(items, 0, 300 if split == "train" else 60, split, rng, data[split])
    # Further training paragraphs from the unused training definitions, drawn with their own generator so
    # that the first 300 and the test split stay as they were.
    more = random.Random(9)
    _qa_paragraphs(pool["train"], used["train"], QA_PARAGRAPHS - 300, "train", more, data["train"])
    for split, paragraphs in data.items():
        path = out / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"version": "1.1", "data": paragraphs}, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def _qa_paragraphs(
    items: list[tuple[str, str]], used: int, count: int, split: str, rng: random.Random, data: list[dict]
) -> int:
    """`count` paragraphs of 6-16 definitions from items[used:], 4 questions each, appended to `data`;
    returns how many items are used then."""
    for _ in range(count):
        p = len(data)
        size = rng.randint(6, 16)
        entries = items[used : used + size]
        if len(entries) < size:
            raise SystemExit(f"{split}: only {len(items)} definitions for {p + 1} paragraphs")
        used += size
        context, spans = "", []
        for lemma, definition in entries:
            article = "An" if lemma[0] in "aeiou" else "A"
            sentence = f"{article} {lemma} is {definition}. "
            lemma_start = len(context) + len(article) + 1
            spans.append((article, lemma, definition, lemma_start + len(f"{lemma} is "), lemma_start))
            context += sentence
        context = context.strip()
        qas = []
        for k, (article, lemma, definition, def_start, lemma_start) in enumerate(
            rng.sample(spans, min(4, len(spans)))
        ):
            if k % 2 == 0:
                question, answer, start = f"What is {article.lower()} {lemma}?", definition, def_start
            else:
                question, answer, start = f"Which word means {definition}?", lemma, lemma_start
            assert context[start : start + len(answer)] == answer, (context, answer, start)
            qas.append(
                {
                    "id": f"{split}-{p}-{k}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": start}],
                }
            )
        data.append({"title": f"definitions {p}", "paragraphs": [{"context": context, "qas": qas}]})
    return used


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="data/builtin/finetune")
    out = Path(parser.parse_args().out)
    web, kjv = sword_verses(WEB), sword_verses(KJV)
    nouns = list(wordnet_synsets("noun"))
    examples = [
        (f"{pos}.{s['offset']}", e)
        for pos in ("noun", "verb", "adj", "adv")
        for s in (nouns if pos == "noun" else wordnet_synsets(pos))
        for e in s["examples"]
    ]
    pretraining_corpus(web, out / "corpus" / "train.txt")
    sentiment(web, examples, vader_lexicon(), out / "sentiment")
    acceptability(examples, out / "acceptability")
    paraphrase_and_similarity(web, kjv, out / "paraphrase", out / "similarity")
    entailment(web, out / "entailment")
    multiple_choice(web, out / "choice")
    tagging(web, entity_gazetteer(nouns), out / "tagging")
    question_answering(nouns, out / "qa")
    print(f"wrote {out} ({sum(p.stat().st_size for p in out.rglob('*') if p.is_file()):,} bytes)")


if __name__ == "__main__":
    main()
