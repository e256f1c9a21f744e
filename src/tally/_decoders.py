"""`Decoders`: one msgspec decoder per response type of the resources, built on first use.

Apart from `tally._base` because it names the public types, which import msgspec: the client imports this on
first use, so `from tally import Tally` loads neither (issue 21's import target)."""

from __future__ import annotations

from tally import _types as t
from tally._decoder import decoder

__all__ = ["Decoders"]


class Decoders:
    """One msgspec decoder per response type, built on first use (`tally._decoder`; the objects that act have
    theirs beside them: `tally._async._objects.AsyncObjectDecoders` and its sync twin)."""

    health = decoder(t.Health)
    auth_status = decoder(t.AuthStatus)
    login_link = decoder(t.LoginLink)
    experiment_summary = decoder(t.ExperimentSummary)
    ingest_result = decoder(t.IngestResult)
    metric_point_page = decoder(t.Page[t.MetricPoint])
    compare_result = decoder(t.CompareResult)
    metric_series = decoder(t.MetricSeries)
    catalog_page = decoder(t.Page[t.CatalogEntry])
    metadata_value_page = decoder(t.Page[t.MetadataValueCount])
    ingestion_key = decoder(t.IngestionKey)
    created_ingestion_key = decoder(t.CreatedIngestionKey)
    ingestion_key_page = decoder(t.Page[t.IngestionKey])
    artifact = decoder(t.Artifact)
    artifact_page = decoder(t.Page[t.Artifact])
