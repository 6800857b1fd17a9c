"""``atoll crds --pooling`` prints Kubeocean's two CRDs; ``atoll pool-syncer`` fails in one line."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from atoll.cli.main import main


def test_crds_pooling() -> None:
    result = CliRunner().invoke(main, ["crds", "--pooling"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [(d["spec"]["names"]["kind"], d["spec"]["names"]["shortNames"], d["spec"]["scope"]) for d in docs] == [
        ("ClusterBinding", ["cb"], "Cluster"), ("ResourceLeasingPolicy", ["rlp"], "Cluster")]
    assert {d["spec"]["group"] for d in docs} == {"cloud.tencent.com"}
    columns = [c["name"] for c in docs[1]["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Cluster", "Phase", "Active", "Age"]


def test_crds_default_stays_kuscia() -> None:
    result = CliRunner().invoke(main, ["crds"])
    assert "cloud.tencent.com" not in result.output and "kuscia.secretflow" in result.output


def test_pool_syncer_bad_time_zone(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "k"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = CliRunner().invoke(main, ["pool-syncer", "--binding", "b", "--kubeconfig", str(kubeconfig),
                                       "--time-zone", "Mars/Base"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: timeZone: unknown time zone 'Mars/Base'"
