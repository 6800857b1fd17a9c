"""DataMesh: the per-domain data service of a lite (Kuscia §8, metadata part).

A lite serves Kuscia's DataMesh metadata API for its own domain only — ``DomainDataService``
(Create/Query/Update/DeleteDomainData) and ``DomainDataSourceService``
(Create/Query/Update/DeleteDomainDataSource), same method and message names as Kuscia's
``proto/api/v1alpha1/datamesh`` — over HTTP (``POST /api/v1/datamesh/<resource>/<verb>``, JSON
in the protobuf JSON mapping) and gRPC (protobuf, :mod:`.wire`). It talks to the master only
through :mod:`atoll.client` with the lite's own credentials; the domain's task processes reach it
at ``DATAMESH_ADDR`` / ``DATAMESH_GRPC_ADDR``.
"""

from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DEFAULT_LOCALFS_URI
from atoll.datamesh.server import DataMeshServer
from atoll.datamesh.settings import DataMeshSettings, settings_from_extra

__all__ = ["DEFAULT_DATA_SOURCE_ID", "DEFAULT_LOCALFS_URI", "DataMeshServer", "DataMeshSettings", "settings_from_extra"]
