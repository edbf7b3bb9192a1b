"""`StoreLease`: `SessionLock`'s counterpart for a session in object storage.

The owner record (the same JSON as ``session.lock``: pid, host, start, command line, heartbeat,
token) is the object ``<session>/session.lock``. There is no OS lock in a store; the store's
conditional writes take its place. On S3 (and stores that speak its API, such as MinIO):

- taking the lease creates the object only if there is none (``If-None-Match: *``), or replaces a
  stale record only if it is still the one read (``If-Match: <ETag>``): of two resumes racing over
  a dead driver's record exactly one wins, the other gets the usual "already running" error;
- the heartbeat replaces the record only if it is still this driver's (``If-Match``), so a driver
  whose lease was taken over (``--force``) learns it at its next beat and stops (`Heartbeat.loss`);
  a write the store applied but whose reply was lost (the client's retry then fails its condition)
  counts as made when the record there carries this driver's token and heartbeat;
- a driver that could not renew its record for `RENEW_WITHIN_BEATS` beats (a network partition)
  stops too, one beat before another host may judge the record stale and take it;
- giving it up deletes the record only if it is still the one this driver wrote (``If-Match`` on the
  delete, where the store supports it; after checking its token in any case).

A record is live as `lock_is_live` judges it (same host: the pid; another host: a heartbeat younger
than three beats). Other stores (``gs://`` through pyarrow, ...) offer no conditional write through
pyarrow: the lease is then read, checked and written, and two drivers starting within the same
moment could both run; a warning says so (docs/cluster.md, "On a Ray cluster").

boto3 (the ``s3`` extra) makes the conditional requests; it reads the same AWS environment as pyarrow.
Written by hand: no library offers a lease on an object store.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Optional, Tuple, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.lock import OwnerLease
from lightning_bohb.session.owner_record import HEARTBEAT_S, describe_owner, live_elsewhere, new_record, parse_record
from lightning_bohb.session.store import SessionStore
from lightning_bohb.utils.layout import LOCK_FILE
from lightning_bohb.utils.uris import join_uri, split_query

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """A conditional write found another record than the one it expected."""


class _S3Records:
    """The record object, written with S3's conditional requests (boto3)."""

    def __init__(self, store: SessionStore) -> None:
        try:
            import boto3
        except ImportError:
            raise SessionError(
                f"Session {store.uri} is in S3, whose lease needs boto3, which is not installed. "
                "Install it with: pip install 'lightning-bohb[s3]'"
            ) from None
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(store.uri)
        options = {key: values[-1] for key, values in parse_qs(split_query(store.uri)[1].lstrip("?")).items()}
        endpoint = options.get("endpoint_override")
        if endpoint and "://" not in endpoint:
            endpoint = f"{options.get('scheme', 'https')}://{endpoint}"
        from botocore.config import Config

        # A beat must end within about a beat, also in a partition: short timeouts, one retry.
        config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=options.get("region"), config=config)
        self.bucket = parts.netloc
        self.key = "/".join(filter(None, [parts.path.strip("/"), LOCK_FILE]))

    def get(self) -> Tuple[Optional[bytes], Optional[str]]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None, None
        return answer["Body"].read((1 << 16) + 1), answer["ETag"]

    def put(self, data: bytes, etag: Optional[str]) -> str:
        """Write the record if the object is still ``etag`` (None: if there is none); its new ETag."""
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise LeaseLost() from None
            raise

    def delete(self, etag: Optional[str]) -> None:
        """Delete the record if it is still ``etag``."""
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, **({"IfMatch": etag} if etag else {}))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise LeaseLost() from None
            raise


class _PlainRecords:
    """The record object in a store without conditional writes: read, checked, written."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        logger.warning(
            f"The store of session {store.uri} offers no conditional writes through pyarrow: two drivers that start it "
            "at the same moment could both run. Start each session from one place (docs/cluster.md)."
        )

    def get(self) -> Tuple[Optional[bytes], Optional[str]]:
        data = self.store.read(LOCK_FILE, 1 << 16)
        return data, None if data is None else str(hash(data))

    def put(self, data: bytes, etag: Optional[str]) -> str:
        current, current_tag = self.get()
        if current_tag != etag:
            raise LeaseLost()
        self.store.write(LOCK_FILE, data)
        return str(hash(data))

    def delete(self, etag: Optional[str]) -> None:
        if self.get()[1] != etag:
            raise LeaseLost()
        self.store.delete(LOCK_FILE)


def read_lease(store: SessionStore) -> Optional[Dict[str, Any]]:
    """The owner record of a session in a store (`read_lock`'s rules), or None when there is none."""
    data = store.read(LOCK_FILE, 1 << 16)
    return None if data is None else parse_record(data)


class StoreLease(OwnerLease):
    """`OwnerLease` of a session kept in a store: the record object, written with conditional requests."""

    heartbeat_name = "lightning_bohb-lease-heartbeat"

    def __init__(self, store: SessionStore, heartbeat_s: Optional[float] = HEARTBEAT_S) -> None:
        super().__init__(store.uri, heartbeat_s)
        self.store = store
        self._records: Any = None
        self._etag: Optional[str] = None

    def _take(self, force: bool, sweep: bool) -> Dict[str, Any]:
        del sweep  # a store has no temporary files: its puts are whole
        scheme = split_query(self.store.uri)[0].split("://", 1)[0].lower()
        self._records = _S3Records(self.store) if scheme in ("s3", "s3a") else _PlainRecords(self.store)
        record = new_record(self.heartbeat_s)
        try:
            raw, etag = self._records.get()
            self._taken_over(None if raw is None else parse_record(raw), force, lambda previous: live_elsewhere(self.store.uri, previous))
            self._etag = etag
            self._put(record)
        except LeaseLost:
            raise SessionError(
                f"Session {self.store.uri} was just taken by another driver (its lease {join_uri(self.store.uri, LOCK_FILE)} "
                f"changed while this one took it). Check it with: lightning-bohb status {self.store.uri}"
            ) from None
        except SessionError:
            raise
        except Exception as err:  # the store's own errors (no bucket, no credentials, no network)
            raise SessionError(
                f"Could not take the lease of session {self.store.uri}: {err}. Check that the bucket exists and that "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (and AWS_ENDPOINT_URL for a store other than AWS) are set."
            ) from None
        return record

    def _give_up(self) -> None:
        try:
            raw, etag = self._records.get()
            if raw is not None and parse_record(raw).get("token") == self._record.get("token"):
                self._records.delete(etag)  # only that record: not one another driver wrote since
        except LeaseLost:
            pass  # another driver's record now: left alone
        except Exception as err:  # a store out of reach: the record goes stale by itself
            logger.warning(f"Could not give up the lease of session {self.store.uri}: {err}")

    def _put(self, record: Dict[str, Any]) -> None:
        """Write ``record`` if the object is still the one this lease last saw (``_etag``): `LeaseLost` if not.

        A write the store applied whose reply was lost (the client's retry then failed its condition)
        counts as made: the record there carries this lease's token and this heartbeat.
        """
        try:
            self._etag = self._records.put(json.dumps(record).encode(), self._etag)
        except LeaseLost:
            raw, etag = self._records.get()
            current = parse_record(raw) if raw is not None else {}
            if current.get("token") != record["token"] or current.get("heartbeat") != record["heartbeat"]:
                raise
            self._etag = etag

    def _renew(self) -> Union[bool, str, None]:
        self._record["heartbeat"] = time.time()
        try:
            self._put(self._record)
        except LeaseLost:
            try:
                owner = describe_owner(read_lease(self.store))
            except Exception:  # out of reach again
                owner = "another driver"
            return f"the lease of session {self.store.uri} was taken over: {owner}"
        except Exception as err:  # the store out of reach for a moment: the next beat tries again
            logger.warning(f"Could not renew the lease of {self.store.uri} (the next beat tries again): {err}")
            return None
        return True
