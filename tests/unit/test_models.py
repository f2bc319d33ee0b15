"""The pydantic models mirror the .avsc files: same fields, order, optionality, enum symbols."""

import typing

import pytest

from schemas import load_schemas
from schemas.codec import Codec
from schemas.models import MODELS
from tests.unit.test_codec import SAMPLES

AVRO_TO_PY = {"string": str, "int": int, "long": int, "boolean": bool}


def _symbols(annotation) -> list[str] | None:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        return _symbols(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return list(args)
    return None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_mirrors_schema(name):
    schema = load_schemas()[name].raw
    fields = {k: v for k, v in MODELS[name].model_fields.items() if k != "avro_name"}
    assert list(fields) == [f["name"] for f in schema["fields"]]
    for f in schema["fields"]:
        model_field = fields[f["name"]]
        assert ("default" in f) == (not model_field.is_required()), f["name"]
        t = f["type"]
        if isinstance(t, dict) and t.get("type") == "enum":
            assert _symbols(model_field.annotation) == t["symbols"], f["name"]
        if isinstance(t, dict) and t.get("type") == "array":
            assert _symbols(model_field.annotation) == t["items"]["symbols"], f["name"]
        if isinstance(t, str):
            assert model_field.annotation is AVRO_TO_PY[t], f["name"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_model_round_trips_through_the_codec(name):
    model = MODELS[name].from_avro(SAMPLES[name])
    codec = Codec()
    assert codec.decode(codec.encode(name, model.to_avro()))[1] == SAMPLES[name]


def test_a_copied_settings_names_the_topics_of_its_own_prefix():
    from streams.settings import Settings

    base = Settings(topic_prefix="a.")
    assert base.topics.fee_standard == "a.fee-standard.v1"  # looked at before the copy
    copy = base.model_copy(update={"topic_prefix": "b."})
    assert copy.topics.fee_standard == "b.fee-standard.v1"
    assert copy.topics.identity["CIVIL_AFFAIRS"] == "b.identity.civil-affairs.v1"
