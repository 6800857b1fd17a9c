"""Names, labels, defaults and Kuscia's DataMesh error codes (``proto/api/v1alpha1/errorcode``)."""

from __future__ import annotations

from atoll.api import kinds

DOMAINDATAS = kinds.kind("kuscia.secretflow", "domaindatas")
DOMAINDATASOURCES = kinds.kind("kuscia.secretflow", "domaindatasources")

KUSCIA_HTTP_PORT = 8070
"""Kuscia's DataMesh ports; Atoll's default is any free port (see settings)."""
KUSCIA_GRPC_PORT = 8071
DEFAULT_DATA_SOURCE_ID = "default-data-source"
DEFAULT_LOCALFS_URI = "var/storage/data"
"""Kuscia's default localfs root relative to its home; Atoll resolves it against the lite's ``dataDir``."""
DEFAULT_VENDOR = "manual"
ENCRYPTED_INFO = "encryptedInfo"

LABEL_DOMAIN_NAME = "kuscia.secretflow/domain-name"
LABEL_DATASOURCE_TYPE = "kuscia.secretflow/domaindatasource-type"
LABEL_DOMAINDATA_TYPE = "kuscia.secretflow/domaindata-type"
LABEL_DOMAINDATA_VENDOR = "kuscia.secretflow/domaindata-vendor"
LABEL_INTERCONN_PROTOCOL_TYPE = "kuscia.secretflow/interconn-protocol-type"

DOMAINDATA_TYPES = ("table", "model", "rule", "report", "unknown")
DATASOURCE_TYPES = ("localfs", "oss", "mysql", "postgresql", "odps", "hive", "dameng")
FS_TYPES = ("localfs", "oss")
FILE_FORMATS = {"UNKNOWN": "unknown", "CSV": "csv", "BINARY": "binary"}
"""protobuf ``FileFormat`` enum name → the DomainData CRD's ``fileFormat`` string."""

# errorcode.proto (Kuscia), the DataMesh range
SUCCESS = 0
ERR_REQUEST_INVALIDATE = 12100
ERR_UNEXPECTED = 12101
ERR_CREATE_DOMAINDATA = 12200
ERR_QUERY_DOMAINDATA = 12201
ERR_GET_DOMAINDATA_FROM_KUBE = 12202
ERR_PATCH_DOMAINDATA = 12204
ERR_DELETE_DOMAINDATA = 12205
ERR_CREATE_DATASOURCE = 12300
ERR_PARSE_DATASOURCE = 12301
ERR_QUERY_DATASOURCE = 12302
ERR_DELETE_DATASOURCE = 12303
ERR_DATASOURCE_EXISTS = 12304
ERR_DATASOURCE_NOT_EXISTS = 12305
ERR_GET_DATASOURCE_FROM_KUBE = 12306
ERR_DECODE_DATASOURCE_INFO = 12307
ERR_ENCODE_DATASOURCE_INFO = 12308
ERR_PATCH_DATASOURCE = 12310
