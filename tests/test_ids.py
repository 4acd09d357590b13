"""Ids of an existing store stay what they were: run directories, sel-, x- and study ids.

The values were computed with the code before `harsanyi.io.settings_hash` replaced the two
hashers (`study.digest` and `store.run_hash`); a change here would orphan every stored result.
The configs are snapshots (tests/data/pinned/) of the shipped studies as they were then, so
that the shipped studies may change their settings (and so their ids) without hiding a change
of the hasher.
"""

import hashlib
import json
from pathlib import Path

import pytest

from harsanyi.config import load_study
from harsanyi.io import settings_hash
from harsanyi.store import run_hash

REPO = Path(__file__).resolve().parents[1]

PINNED = {
    "config/config.yaml": {
        "study": "default-e9ff50fcd69a",
        "selections": {"digits": "sel-7ec15e038dcb", "breast_cancer": "sel-c5328514a138"},
        "runs": {
            "digits-lenet-s0-d95e60af1f7f": "x-55a66257a290",
            "digits-lenet-s0-noise0.15-04edaaf57d51": "x-55a66257a290",
            "digits-mlp-s0-fb9c539b7c8e": "x-55a66257a290",
            "digits-mlp-s0-noise0.15-9041ef08e32a": "x-55a66257a290",
            "breast_cancer-mlp-s0-624b9bad3685": "x-802afe86ab47",
            "breast_cancer-mlp-s0-noise0.15-2a01636ed22e": "x-802afe86ab47",
        },
    },
    "tests/data/tiny.yaml": {
        "study": "tiny-6df49c0ff859",
        "selections": {"digits": "sel-e4601d7d2944"},
        "runs": {
            "digits-lenet-s0-ec99200d8377": "x-48c763694fa0",
            "digits-lenet-s0-noise0.2-5443e05db341": "x-48c763694fa0",
        },
    },
    "config/fashion_mnist.yaml": {
        "study": "fashion_mnist-21d321a40ab1",
        "selections": {"fashion_mnist": "sel-477690757bbe"},
        "runs": {
            "fashion_mnist-lenet-s0-c09c118d95dc": "x-ec0ef1a3feb9",
            "fashion_mnist-vgg11-s1-noise0.1-255220d45704": "x-ec0ef1a3feb9",
            "fashion_mnist-resnet18-s1-noise0.1-507b3f603efb": "x-ec0ef1a3feb9",
        },
    },
}


@pytest.mark.parametrize("config", sorted(PINNED))
def test_ids_of_the_shipped_studies_are_unchanged(config):
    study = load_study(REPO / "tests/data/pinned" / Path(config).name, check_data=False)
    pinned = PINNED[config]
    assert study.study_id == pinned["study"]
    assert {name: plan.selection_id for name, plan in study.datasets.items()} == pinned[
        "selections"
    ]
    extraction_ids = {run.name: study.extraction_id(run) for run in study.runs}
    for name, xid in pinned["runs"].items():
        assert extraction_ids[name] == xid


def test_one_hasher_for_runs_and_settings():
    settings = {"b": [1, 2.5, None, (3, 4)], "a": {"z": True, "y": "text"}}
    # what the old `study.digest` computed: sorted keys, no whitespace, sha256, 12 digits
    old = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    assert run_hash(settings) == settings_hash(settings)
    assert settings_hash(settings) == hashlib.sha256(old.encode()).hexdigest()[:12]
