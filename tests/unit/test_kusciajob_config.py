"""The node config fields of the KusciaJob controllers: ``enableWorkloadApprove`` and
``garbageCollection.kusciaJobGC.durationHours`` (Kuscia's names and default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.node.config import ConfigError, NodeConfig, load_config


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "atoll.yaml"
    path.write_text(f"mode: master\ndomainID: kuscia-system\ndataDir: data\n{extra}")
    return path


def test_defaults_are_kuscias(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.enable_workload_approve is False
    assert config.job_gc_duration_hours == 720.0


def test_fields_are_read_and_written_back(tmp_path: Path) -> None:
    text = (
        "enableWorkloadApprove: true\n"
        "garbageCollection:\n  kusciaJobGC: {durationHours: 2}\n  kusciaDomainDataGC: {enable: true}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.enable_workload_approve is True and config.job_gc_duration_hours == 2.0
    again = tmp_path / "again"
    again.mkdir()
    (again / "atoll.yaml").write_text(config.to_yaml())
    reloaded = load_config(again / "atoll.yaml")
    assert reloaded.enable_workload_approve is True and reloaded.job_gc_duration_hours == 2.0
    assert reloaded.extra["garbageCollection"]["kusciaDomainDataGC"] == {"enable": True}  # other GC settings kept
    built = NodeConfig(mode="master", domain_id="m", data_dir=tmp_path, job_gc_duration_hours=5)
    assert "durationHours: 5" in built.to_yaml()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "true"])
def test_a_bad_retention_names_the_field(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"garbageCollection\.kusciaJobGC\.durationHours"):
        load_config(write(tmp_path, f"garbageCollection:\n  kusciaJobGC: {{durationHours: {value}}}\n"))
