"""Tests of the rules scale benchmark's plumbing: its synthetic rules load, fire, and avoid the noise."""

from __future__ import annotations

import random

import rules_scale_bench as rsb

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.loader import builtin_rules, parse_rules
from secretsvc.scan.rules.selfcheck import check_examples


def noise_of(text: str) -> list[Content]:
    return [Content(data=text.encode(), path="noise.txt", layer_index=0, location=Location.FILE)]


def test_present_in_finds_words_case_insensitively_and_literally() -> None:
    noise = noise_of("Hello World\nbrand.x is here\n")
    assert rsb.present_in(noise, ["world", "brand.x", "brandxx", "hello world", "nowhere"]) == {
        "world",
        "brand.x",
        "hello world",
    }


def test_vendors_avoid_words_of_the_noise() -> None:
    rng = random.Random(3)
    first = rsb.vendors(40, random.Random(3), noise_of(""))
    # Plant half of them in the noise: the same seed must then pick others for those.
    planted = " ".join(v for v, _ in first[:20])
    again = rsb.vendors(40, rng, noise_of(planted))
    assert len(again) == 40 and len({v for v, _ in again}) == 40
    assert not {v for v, _ in again} & {v for v, _ in first[:20]}


def test_every_synthetic_shape_loads_and_its_examples_pass() -> None:
    pairs = rsb.vendors(30, random.Random(5), noise_of(""))
    synthetic = parse_rules(rsb.synthetic_rules_toml(pairs, random.Random(5)), "synthetic.toml")
    assert len(synthetic) == 30
    # Two shapes in ten have a trigger instead of keywords (a trigger is case-sensitive).
    assert sum(not r.rule.detectors[0].caseless for r in synthetic) == 6
    rules = RuleSet([r.rule for r in (*builtin_rules(), *synthetic)], engine="hyperscan")
    assert check_examples(rules, synthetic, seeds=(1, 2)) == []
