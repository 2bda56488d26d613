"""datablox: dataflow topologies of elements joined by ZeroMQ, from one laptop to many hosts.

The public API for writing element classes::

    from datablox import Element, Source, Param, push_in, push_out, query_in, query_out

and for running a topology from Python: ``datablox.run("my.topo")``.
"""

from datablox.client import run
from datablox.element import Element, Record, Source
from datablox.errors import (
    CodecError,
    DatabloxError,
    ElementClassError,
    ElementError,
    ExpressionError,
    ParameterError,
    ProtocolError,
    QueryError,
    QueryTimeout,
    RunError,
    TopologyError,
)
from datablox.partition import PARTITIONS, owner_of, partition_of
from datablox.ports import REQUIRED, Param, Port, push_in, push_out, query_in, query_out
from datablox.sink import FileSink

__version__ = "0.1.0"

__all__ = [
    "PARTITIONS",
    "REQUIRED",
    "CodecError",
    "DatabloxError",
    "Element",
    "ElementClassError",
    "ElementError",
    "ExpressionError",
    "FileSink",
    "Param",
    "ParameterError",
    "Port",
    "ProtocolError",
    "QueryError",
    "QueryTimeout",
    "Record",
    "RunError",
    "Source",
    "TopologyError",
    "__version__",
    "owner_of",
    "partition_of",
    "push_in",
    "push_out",
    "query_in",
    "query_out",
    "run",
]
