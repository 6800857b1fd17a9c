"""DataMesh and atoll-psi pieces without a server: Kuscia's info sealing format, message
normalization, the group's commutativity, and reading a task from its three variables."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from atoll.apps.psi.config import TaskConfigError, load_task
from atoll.apps.psi.group import GroupError, Masker, compare_keys, hash_to_group
from atoll.datamesh.info import InfoError, data_path, load_domain_key, localfs_root, open_sealed, seal
from atoll.datamesh.messages import generate_id, normalize
from atoll.datamesh.settings import SettingsError, settings_from_extra
from atoll.node.config import generate_domain_key

KEY = load_domain_key(generate_domain_key())


def test_sealed_info_is_kuscias_chunked_oaep_sha256() -> None:
    assert KEY is not None
    info = {"database": {"endpoint": "db:3306", "user": "u", "password": "p" * 300, "database": "d"}}
    sealed = seal(KEY.public_key(), info)
    raw = base64.b64decode(sealed)
    assert len(raw) % 256 == 0 and len(raw) > 256  # >190 bytes of JSON: several 2048-bit blocks
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    plain = b"".join(KEY.decrypt(raw[i : i + 256], oaep) for i in range(0, len(raw), 256))
    assert orjson.loads(plain) == info  # what Kuscia's DecryptOAEP does
    assert open_sealed(KEY, sealed) == info
    other = load_domain_key(generate_domain_key())
    assert other is not None
    with pytest.raises(InfoError, match="cannot be opened"):
        open_sealed(other, sealed)


def test_paths_stay_inside_the_source(tmp_path: Path) -> None:

    root = tmp_path
    assert localfs_root("var/storage/data", root) == root / "var" / "storage" / "data"
    assert localfs_root("/srv/x", root) == Path("/srv/x")
    assert data_path(root, "a/b.csv") == root / "a" / "b.csv"
    for bad in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(InfoError, match="relative_uri"):
            data_path(root, bad)
    with pytest.raises(InfoError, match="domainKeyData"):
        load_domain_key(base64.b64encode(b"not a key").decode())


def test_requests_accept_proto_and_json_names_but_keep_map_keys() -> None:
    req = normalize({"domaindataId": "x", "relativeUri": "a", "attributes": {"someKey": "v"},
                     "columns": [{"name": "c", "notNullable": True}], "info": {"localfs": {"path": "p"}}})
    assert req == {"domaindata_id": "x", "relative_uri": "a", "attributes": {"someKey": "v"},
                   "columns": [{"name": "c", "not_nullable": True}], "info": {"localfs": {"path": "p"}}}
    generated = generate_id("123 Alice Table.CSV")
    assert generated.startswith("alicetablecsv-") and len(generated) == len("alicetablecsv-") + 16


def test_settings() -> None:
    assert settings_from_extra({}).http_port == 0  # several lites share a host: any free port
    assert settings_from_extra({"datamesh": {"httpPort": 8070, "grpcPort": 8071}}).http_port == 8070
    with pytest.raises(SettingsError, match=r"datamesh\.httpPort"):
        settings_from_extra({"datamesh": {"httpPort": "eighty"}})


def test_masking_commutes_and_separates() -> None:
    a, b = Masker(), Masker()
    points = hash_to_group([b"alice", b"bob", b"carol"])
    ab = a.mask_packed(b.mask(points))
    ba = b.mask_packed(a.mask(points))
    assert ab == ba and len(ab) == 96
    assert len(set(compare_keys(ab))) == 3
    assert a.mask(points) != b.mask(points)
    with pytest.raises(GroupError, match="whole number"):
        a.mask_packed(b"x" * 33)
    with pytest.raises(GroupError, match="cannot multiply"):
        a.mask_packed(bytes(32))  # u = 0 has small order: refused


def cluster(me: int) -> str:
    return orjson.dumps({"parties": [{"name": p, "role": "", "services": [{"portName": "psi",
                                                                          "endpoints": [f"127.0.0.1:{20000 + i}"]}]}
                                     for i, p in enumerate(("alice", "bob"))], "selfPartyIdx": me}).decode()


def test_task_from_kusicas_secretflow_shape() -> None:
    config = {
        "sf_datasource_config": {"alice": {"id": "default-data-source"}, "bob": {"id": "default-data-source"}},
        "sf_cluster_desc": {"parties": ["alice", "bob"]},
        "sf_node_eval_param": {"attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys", "protocol",
                                              "sort_result", "receiver_parties", "allow_empty_result", "join_type"],
                               "attrs": [{"is_na": False, "ss": ["id1"]}, {"ss": ["id2"]}, {"s": "PROTOCOL_RR22"},
                                         {"b": True}, {"ss": ["alice", "bob"]}, {"is_na": True},
                                         {"s": "inner_join"}]},
        "sf_input_ids": ["alice-table", "bob-table"],
        "sf_output_ids": ["psi-output", "psi-output"],
        "sf_output_uris": ["psi-output.csv", "psi-output.csv"],
    }
    env = {"TASK_INPUT_CONFIG": orjson.dumps(config).decode(), "TASK_CLUSTER_DEFINE": cluster(1), "TASK_ID": "t",
           "ALLOCATED_PORTS": '{"ports":[{"name":"psi","port":20001,"scope":"Cluster","protocol":"HTTP"}]}'}
    task = load_task(env)
    assert (task.self_party, task.peer_party, task.peer_url, task.port) == ("bob", "alice",
                                                                            "http://127.0.0.1:20000", 20001)
    assert (task.input_id, task.keys, task.output_uri) == ("bob-table", ("id2",), "psi-output.csv")
    assert task.self_receives and task.peer_receives and not task.allow_empty_result
    assert task.protocol == "PROTOCOL_RR22"  # accepted; the app runs ECDH and logs so

    config["sf_node_eval_param"]["attrs"][6] = {"s": "left_join"}  # type: ignore[index]
    with pytest.raises(TaskConfigError, match="join_type"):
        load_task({**env, "TASK_INPUT_CONFIG": orjson.dumps(config).decode()})
    with pytest.raises(TaskConfigError, match="ALLOCATED_PORTS: no port named 'psi'"):
        load_task({**env, "ALLOCATED_PORTS": '{"ports":[]}'})
    with pytest.raises(TaskConfigError, match="TASK_INPUT_CONFIG: not set"):
        load_task({k: v for k, v in env.items() if k != "TASK_INPUT_CONFIG"})


def test_wire_roundtrip_and_defaults() -> None:
    from atoll.datamesh.wire import WireError, decode, encode

    msg = {"header": {"custom_headers": {"a": "b"}}, "domaindata_id": "x", "attributes": {"k": "v", "z": ""},
           "columns": [{"name": "id", "type": "str", "not_nullable": True}, {"name": "v", "type": "int"}],
           "partition": {"type": "path", "fields": [{"name": "d", "type": "str"}]}, "file_format": "BINARY"}
    assert decode("CreateDomainDataRequest", encode("CreateDomainDataRequest", msg)) == msg
    assert encode("Status", {"code": 0, "message": ""}) == b""  # proto3 defaults are not sent
    assert decode("Status", encode("Status", {"code": -1, "message": "m"})) == {"code": -1, "message": "m"}
    with pytest.raises(WireError):
        decode("QueryDomainDataRequest", b"\x12\x05ab")
