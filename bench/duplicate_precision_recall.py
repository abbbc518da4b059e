"""Duplicate detection: candidate recall of the match keys, precision/recall/F1 of the score,
keys per identity, and candidates per lookup on a synthetic population.

Run from the repository root:  .venv/bin/python bench/duplicate_precision_recall.py [--population N]

1. Labelled set (tests/fixtures/name_variants.json). For every pair: do the two identities share at
   least one match key (what the service's lookup needs to find the duplicate at all), and does
   ``score`` call it a likely duplicate. Key recall is over the duplicate pairs; precision, recall
   and F1 of the classification are over all pairs, overall and per dev/test split.
2. Keys per identity: mean and max over every identity of the labelled set.
3. Candidate volume: a synthetic population drawn from frequent given and family names of seven
   nationalities (Zipf-weighted, random dates of birth with the usual mix of exact, month-only and
   estimated dates). Candidates per lookup = distinct other people sharing a key with a probe. The
   pools are small (a few dozen names each), so homonyms are far denser than in a real caseload: read
   the figures as an upper bound for that population size.

A report, not a timed assertion; tests/unit/test_matching.py asserts the quality floor on (1).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.intake.matching import LIKELY_DUPLICATE_THRESHOLD, Identity, match_keys, score  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "name_variants.json"


def identity_from_json(data: dict) -> Identity:
    """An Identity from one side of a labelled pair."""
    dob = data.get("date_of_birth")
    return Identity(
        family_name=data.get("family_name", ""), given_names=data.get("given_names", ""),
        aliases=tuple(data.get("aliases", ())), original_script_name=data.get("original_script_name"),
        date_of_birth=date.fromisoformat(dob) if dob else None,
        dob_precision=data.get("dob_precision", "day"), dob_estimated=bool(data.get("dob_estimated", False)),
        nationality=data.get("nationality"))


def load_pairs(path: Path = FIXTURE) -> list[dict]:
    """The labelled pairs, each with ``a`` and ``b`` as Identity objects."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [{**pair, "a": identity_from_json(pair["a"]), "b": identity_from_json(pair["b"])}
            for pair in document["pairs"]]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def classification(rows: list[dict]) -> dict:
    """Precision, recall and F1 of ``score`` over evaluated rows."""
    tp = sum(r["duplicate"] and r["flagged"] for r in rows)
    fp = sum(not r["duplicate"] and r["flagged"] for r in rows)
    fn = sum(r["duplicate"] and not r["flagged"] for r in rows)
    tn = sum(not r["duplicate"] and not r["flagged"] for r in rows)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1}


def evaluate(pairs: list[dict]) -> dict:
    """Every figure of part 1 and 2 (see the module docstring) for ``pairs``."""
    rows = []
    key_counts = []
    for pair in pairs:
        keys_a, keys_b = match_keys(pair["a"]), match_keys(pair["b"])
        key_counts += [len(keys_a), len(keys_b)]
        result = score(pair["a"], pair["b"])
        rows.append({"id": pair["id"], "group": pair["group"], "split": pair.get("split", "dev"),
                     "duplicate": pair["label"] == "duplicate", "shares_key": bool(keys_a & keys_b),
                     "flagged": result.is_likely_duplicate, "score": result.score, "reasons": result.reasons})
    duplicates = [r for r in rows if r["duplicate"]]
    distinct = [r for r in rows if not r["duplicate"]]
    return {
        "pairs": len(rows), "duplicates": len(duplicates), "distinct": len(distinct),
        "key_recall": _ratio(sum(r["shares_key"] for r in duplicates), len(duplicates)),
        "key_share_distinct": _ratio(sum(r["shares_key"] for r in distinct), len(distinct)),
        "keys_per_identity_mean": statistics.fmean(key_counts), "keys_per_identity_max": max(key_counts),
        "keys_per_identity_median": statistics.median(key_counts),
        **classification(rows),
        "splits": {split: classification([r for r in rows if r["split"] == split]) for split in ("dev", "test")},
        "rows": rows,
    }


# --- Synthetic population ------------------------------------------------------------------

POOLS = {
    "SYR": ("Mohammed Ahmad Ali Khaled Omar Abdulrahman Yousef Hussein Mahmoud Ibrahim Hassan Mustafa Rami Samer "
            "Fatima Aisha Maryam Nour Rania Layla Hiba Salma Zainab Amina Rasha Huda Lina Reem Sara Dima",
            "Hamwi Darwish Khalil Haddad Mahmoud Ahmad Ali Hassan Al-Hassan Ibrahim Khatib Al-Masri Hamdan Barakat "
            "Saleh Kassem Nasser Sabbagh Jaber Halabi Shami Hussein Issa Yassin Abdullah Othman Kurdi Zaher "
            "Mohammad Omar Suleiman Rifai Tamer Azzam Bakri Najjar Attar Homsi Idlibi Haj Hariri Daher Salem"),
    "AFG": ("Mohammad Ahmad Ali Abdul Wahid Gul Ahmad Najibullah Hekmatullah Zabihullah Rahmatullah Sayed Reza Hossein "
            "Farid Jawad Nabi Ghulam Sakhi Shir Agha Zahra Fatima Maryam Sima Mina Parwana Shabana Nargis Laila "
            "Masooda Freshta Habiba",
            "Ahmadi Rahimi Karimi Hosseini Mohammadi Haidari Sultani Noorzai Stanekzai Khan Safi Hotak Amiri Sharifi "
            "Wardak Popal Rezaei Naderi Jafari Sadat Azizi Nazari Qaderi Rasuli Mansoori Habibi Yousufzai Durrani "
            "Alizai Barakzai Popalzai Kakar Mangal Zadran Samadi Faizi Wahidi Nuristani Hakimi Akbari"),
    "IRQ": ("Ali Hussein Mohammed Ahmed Abbas Hassan Haider Mustafa Omar Khalid Karim Ayman Samir Kadhim Salah "
            "Zainab Fatima Maryam Noor Sara Huda Ruqaya Shahad Aya Rusul Zahraa Duaa Israa Amal Hawraa",
            "Al-Jubouri Al-Tamimi Al-Obaidi Al-Zubaidi Al-Shammari Ibrahim Hussein Kareem Yacoub Abbas Al-Dulaimi "
            "Al-Saadi Al-Bayati Al-Rubaie Kadhim Jaafar Hamad Salman Mahdi Jassim Al-Khafaji Al-Maliki Al-Hashimi "
            "Al-Janabi Al-Azzawi Al-Ani Al-Hiti Al-Kubaisi Al-Mashhadani Al-Qaisi Al-Hakim Al-Musawi"),
    "ERI": ("Tesfay Yonas Dawit Semere Filmon Yohannes Mehari Habtom Amanuel Mussie Tsegay Mulugeta Merhawi Robel "
            "Senait Selam Luwam Rahel Semhar Helen Mehret Saba Winta Hiwet Yordanos Eden Lidia Senayt Feven Nebiat",
            "Gebremedhin Tesfamariam Kidane Mehari Tekle Berhane Hagos Woldemariam Tewelde Gebreyesus Asfaha "
            "Ghebrehiwet Haile Abraha Tsegay Gebru Weldemichael Yemane Andemariam Habte Kahsay Negash Teklehaimanot "
            "Zerai Okbay Fitsum Ghebreslassie Measho Kiflom Mebrahtu Tesfazion Gebrehiwet Ogbazghi Mengsteab"),
    "SDN": ("Mohamed Ahmed Osman Abdelrahman Hassan Omer Ibrahim Idris Yousif Abdalla Mustafa Adam Bashir Salih "
            "Musa Fatima Amna Mariam Hawa Aisha Suad Halima Zainab Khadija Asma Samia Nafisa Sara Hanan Mona",
            "Ahmed Mohamed Osman Idris Hamid Adam Abdalla Yousif Omer Ali Bashir Ibrahim Musa Yassin Suleiman "
            "Abakar Mahamat Haroun Ishag Ismail Babiker Elamin Elhassan Elsheikh Abdelrahman Eltayeb Mukhtar "
            "Hamdan Nur Ahmed Salih Fadul Yahya Daoud"),
    "UKR": ("Oleksandr Volodymyr Serhii Andriy Dmytro Yurii Mykola Oleksii Ihor Vasyl Petro Ivan Maksym Bohdan "
            "Taras Olena Kateryna Tetiana Nataliia Iryna Yuliia Oksana Svitlana Liudmyla Anna Mariia Olha Viktoriia "
            "Daria Sofiia",
            "Kovalenko Shevchenko Bondarenko Melnyk Tkachenko Kravchenko Lysenko Boyko Moroz Savchuk Polishchuk "
            "Petrenko Kovalchuk Oliinyk Shevchuk Koval Bondar Tkachuk Marchenko Rudenko Savchenko Klymenko "
            "Ponomarenko Pavlenko Levchenko Kharchenko Sydorenko Karpenko Vasylenko Ivanenko Hrytsenko Kuzmenko "
            "Zakharchenko Tymoshenko Fedorenko Romanenko Nazarenko Yakovenko Hryhorenko Mazur"),
    "SOM": ("Mohamed Ahmed Abdi Abdirahman Hassan Ali Abdullahi Omar Yusuf Ismail Hussein Farah Abdikarim Mahad "
            "Fatima Amina Hodan Faduma Halima Hawa Asha Sahra Ifrah Nasra Ayan Hamdi Safiya Khadra Ubah Maryan",
            "Mohamed Ahmed Ali Hassan Abdi Omar Farah Warsame Abdullahi Hussein Ismail Jama Yusuf Aden Osman Nur "
            "Mohamud Elmi Dahir Egal Gedi Hersi Samatar Abdille Shire Duale Guled Barre Isse Roble Qorane Abikar"),
}
NATIONALITY_WEIGHTS = {"SYR": 25, "AFG": 20, "UKR": 15, "IRQ": 10, "ERI": 10, "SDN": 10, "SOM": 10}


def _zipf_choice(rng: random.Random, items: list[str]) -> str:
    weights = [1 / (rank + 1) for rank in range(len(items))]
    return rng.choices(items, weights)[0]


def synthetic_population(size: int, seed: int = 7) -> list[Identity]:
    """``size`` made-up identities drawn from ``POOLS`` (see the module docstring)."""
    rng = random.Random(seed)
    nationalities = list(NATIONALITY_WEIGHTS)
    weights = list(NATIONALITY_WEIGHTS.values())
    pools = {nat: (given.split(), family.split()) for nat, (given, family) in POOLS.items()}
    people = []
    for _ in range(size):
        nat = rng.choices(nationalities, weights)[0]
        given_pool, family_pool = pools[nat]
        given = _zipf_choice(rng, given_pool)
        if nat in ("SYR", "IRQ", "SDN", "SOM", "ERI") and rng.random() < 0.3:
            given = f"{given} {_zipf_choice(rng, given_pool)}"  # a father's name in the given names
        dob = date(rng.randint(1950, 2015), rng.randint(1, 12), rng.randint(1, 28))
        kind = rng.random()
        if kind < 0.55:
            precision, estimated = "day", False
        elif kind < 0.65:
            precision, estimated = "month", False
        elif kind < 0.97:
            precision, estimated = "year", True
        else:
            precision, estimated, dob = "day", False, None
        people.append(Identity(family_name=_zipf_choice(rng, family_pool), given_names=given,
                               date_of_birth=dob, dob_precision=precision, dob_estimated=estimated, nationality=nat))
    return people


def candidate_volume(size: int, probes: int = 500, seed: int = 7) -> dict:
    """Keys per identity and candidates per lookup over a synthetic population of ``size``."""
    started = time.perf_counter()
    people = synthetic_population(size, seed)
    index: dict[str, list[int]] = defaultdict(list)
    keys_of = []
    for person_id, person in enumerate(people):
        keys = match_keys(person)
        keys_of.append(keys)
        for key in keys:
            index[key].append(person_id)
    keyed = time.perf_counter() - started
    rng = random.Random(seed + 1)
    counts = []
    by_kind: dict[str, list[int]] = defaultdict(list)
    for person_id in rng.sample(range(size), min(probes, size)):
        found = set()
        for key in keys_of[person_id]:
            found.update(index[key])
        found.discard(person_id)
        counts.append(len(found))
        by_kind[_dob_kind(people[person_id])].append(len(found))
    counts.sort()
    key_counts = sorted(map(len, keys_of))
    return {"population": size, "probes": len(counts), "keys_mean": statistics.fmean(key_counts),
            "keys_median": statistics.median(key_counts),
            "candidates_mean": statistics.fmean(counts), "candidates_median": statistics.median(counts),
            "candidates_p95": counts[int(0.95 * (len(counts) - 1))], "candidates_max": counts[-1],
            "candidates_by_dob": {kind: (len(v), statistics.fmean(v), max(v)) for kind, v in sorted(by_kind.items())},
            "key_seconds_per_identity": keyed / size}


def _dob_kind(identity: Identity) -> str:
    if identity.date_of_birth is None:
        return "no date"
    return "estimated" if identity.dob_estimated else identity.dob_precision


def _figures(f: dict) -> str:
    return (f"precision {f['precision']:.3f}  recall {f['recall']:.3f}  F1 {f['f1']:.3f}  "
            f"(TP {f['tp']} FP {f['fp']} FN {f['fn']} TN {f['tn']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=100_000, help="synthetic population size (0: skip)")
    parser.add_argument("--show", action="store_true", help="list every misclassified or unkeyed pair")
    args = parser.parse_args(argv)

    result = evaluate(load_pairs())
    print(f"Labelled set: {result['pairs']} pairs ({result['duplicates']} duplicates, {result['distinct']} distinct)")
    print(f"  key candidate recall (duplicates sharing >= 1 key): {result['key_recall']:.3f}")
    print(f"  distinct pairs sharing >= 1 key (hard negatives):    {result['key_share_distinct']:.3f}")
    print(f"  score >= {LIKELY_DUPLICATE_THRESHOLD}: {_figures(result)}")
    for split, figures in result["splits"].items():
        print(f"    {split:4}: {_figures(figures)}")
    print(f"  keys per identity: mean {result['keys_per_identity_mean']:.1f}, "
          f"median {result['keys_per_identity_median']:.0f}, max {result['keys_per_identity_max']}")
    by_group: dict[str, list[dict]] = defaultdict(list)
    for row in result["rows"]:
        by_group[row["group"]].append(row)
    print("  per group: pairs, keyed (duplicates), correct")
    for group, rows in by_group.items():
        keyed = sum(r["shares_key"] for r in rows if r["duplicate"])
        dups = sum(r["duplicate"] for r in rows)
        correct = sum(r["duplicate"] == r["flagged"] for r in rows)
        keyed_text = f"{keyed}/{dups}" if dups else "-"
        print(f"    {group:28} {len(rows):3}  {keyed_text:>7}  {correct}/{len(rows)}")
    misses = [r for r in result["rows"] if (r["duplicate"] and not r["shares_key"]) or r["duplicate"] != r["flagged"]]
    if args.show:
        print("  errors (id, group, label, shares key, score, reasons):")
        for r in misses:
            label = "dup" if r["duplicate"] else "distinct"
            print(f"    {r['id']} {r['group']:26} {label:8} key={r['shares_key']!s:5} {r['score']:.3f} "
                  f"{' '.join(r['reasons'])}")
    if args.population:
        volume = candidate_volume(args.population)
        print(f"Synthetic population of {volume['population']:,} ({volume['probes']} probes):")
        print(f"  keys per identity: mean {volume['keys_mean']:.1f}, median {volume['keys_median']:.0f}")
        print(f"  candidates per lookup: mean {volume['candidates_mean']:.1f}, "
              f"median {volume['candidates_median']:.0f}, p95 {volume['candidates_p95']}, "
              f"max {volume['candidates_max']}")
        for kind, (probes, mean, most) in volume["candidates_by_dob"].items():
            print(f"    probes with date {kind:9}: {probes:3}  candidates mean {mean:.1f}, max {most}")
        print(f"  key computation: {volume['key_seconds_per_identity'] * 1e3:.2f} ms per identity")


if __name__ == "__main__":
    main()
