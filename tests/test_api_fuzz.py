"""docs/openapi.json as an outside client reads it: Schemathesis generates requests from it, valid
and invalid, against a real `swag serve` on loopback, and checks every answer against it.

Bounded here (a fixed seed, a few examples per operation, well under a minute). A longer run
is one command (docs/service.md):

    SWAG_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_api_fuzz.py -s
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from engine_process import start_engine

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("SWAG_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("SWAG_FUZZ_SEED", "20260612"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.negative_data_rejection]
ANSWERS: Counter = Counter()  # status -> count, over the whole run


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = start_engine(tmp_path_factory.mktemp("engine"), "--max-pixels", "250000", "--idle-timeout", "300")
    yield engine
    print(f"\n{sum(ANSWERS.values())} requests fuzzed (seed {SEED}, {EXAMPLES} examples an operation): "
          f"{sum(n for status, n in ANSWERS.items() if status >= 500)} with a 5xx answer; "
          f"by status {dict(sorted(ANSWERS.items()))}")
    assert engine.stop() == 0


# A refusal is a refusal: 411 and 413 reject bad data as much as 400 does.
REJECTIONS = ["400", "401", "404", "405", "411", "413"]
schema = schemathesis.openapi.from_path(SPEC, config=SchemathesisConfig.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": EXAMPLES},
    "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
}))


@schema.parametrize()
def test_every_answer_conforms_to_the_api_description(case, engine):
    response = case.call(base_url=engine.url, headers={"Authorization": f"Bearer {engine.token}"}, timeout=60)
    ANSWERS[response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers={"Authorization": f"Bearer {engine.token}"})
