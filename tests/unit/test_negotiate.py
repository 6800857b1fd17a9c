"""``negotiate``: the media range that decides is the client's preferred one the server serves,
with the conversion it asks for; ranges asking for an unserved conversion are passed over (kube's
``AllowsMediaTypeTransform``); an error's ``Status`` is YAML only when preferred, never converted."""

from __future__ import annotations

import orjson
import pytest

from atoll.api import errors
from atoll.api.errors import NotAcceptable
from atoll.apiserver.http.codec import status_response
from atoll.apiserver.http.negotiate import Target, error_media, negotiate

TABLE = "application/json;as=Table;v={v};g=meta.k8s.io"
KUBECTL_GET = f"{TABLE.format(v='v1')},{TABLE.format(v='v1beta1')},application/json"


@pytest.mark.parametrize(("accept", "expected"), [
    ("", ("json", None)),
    ("application/json, */*", ("json", None)),
    (KUBECTL_GET, ("json", Target("Table", "v1"))),
    (f"{TABLE.format(v='v2')},{TABLE.format(v='v1beta1')},application/json", ("json", Target("Table", "v1beta1"))),
    ("application/json;as=Table;v=v1;g=example.com, application/json", ("json", None)),
    ("application/json;as=Other;g=meta.k8s.io;v=v1, application/json", ("json", None)),
    ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1,application/json",
     ("json", Target("PartialObjectMetadataList", "v1beta1"))),
    ("application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1,application/json", ("json", None)),
    ("application/yaml;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
     ("yaml", Target("PartialObjectMetadata", "v1beta1"))),
    ("application/json;q=0.5;as=Table;g=meta.k8s.io;v=v1, application/yaml", ("yaml", None)),
    ("application/json; charset=utf-8", ("json", None)),
    ("*/*, application/yaml", ("yaml", None)),  # specific before wildcard at equal quality (goautoneg)
    ("application/*, application/yaml", ("yaml", None)),
    ("*/*, application/*;q=0.9, application/yaml;q=0.8", ("json", None)),  # quality first
])
def test_the_preferred_served_range_decides(accept: str, expected: tuple[str, Target | None]) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", [
    "text/html",
    "application/json;g=meta.k8s.io;v=v1",  # a conversion without ``as``: kube passes the range over
    "Application/YAML",  # media ranges match case-sensitively, as kube's goautoneg
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2",
    "application/json;as=Table;g=meta.k8s.io;v=v1alpha1",
    "application/json;as=Table;g=meta.k8s.io",
])
def test_nothing_served_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="application/json, application/yaml"):
        negotiate(accept)


def test_a_watch_is_not_served_in_yaml() -> None:
    assert negotiate("application/yaml, application/json;q=0.1", watch=True) == ("json", None)
    with pytest.raises(NotAcceptable):
        negotiate("application/yaml", watch=True)


@pytest.mark.parametrize(("accept", "media"), [
    ("", "json"),
    ("application/json", "json"),
    ("application/yaml", "yaml"),
    ("application/json;q=0.9, application/yaml", "yaml"),
    ("application/json, application/yaml", "json"),
    ("*/*, application/yaml", "yaml"),
    ("Application/YAML", "json"),  # matched case-sensitively, as kube's goautoneg (the answer: 406)
    ("application/yaml;as=Table;g=meta.k8s.io;v=v1", "json"),  # a Status is never converted
    ("text/html, application/yaml;q=0", "json"),  # nothing acceptable: JSON, not 406
])
def test_an_error_is_yaml_only_when_preferred(accept: str, media: str) -> None:
    assert error_media(accept) == media


def test_a_status_yaml_cannot_represent_is_answered_in_json() -> None:
    class Name(str):
        """A str subclass: orjson encodes it, YAML's safe dumper refuses it."""

    err = errors.NotFound(Name("pods \"p\" not found"))
    answer = status_response(err, accept="application/yaml")
    assert answer.status == 404 and answer.content_type == "application/json"
    assert answer.body is not None and orjson.loads(answer.body)["message"] == 'pods "p" not found'
