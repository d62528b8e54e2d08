"""Export files on S3: multipart uploads written part by part, small files in one put, presigned
URLs. The client is segments.aws's (created once per container, honours AWS_ENDPOINT_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from segments import aws, errors
from segments.config import get_settings

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


class UploadGone(Exception):
    """The multipart upload is no longer open (completed by an earlier attempt, or aborted)."""


def bucket() -> str:
    name = get_settings().exports_bucket
    if not name:
        raise RuntimeError("EXPORTS_BUCKET is not set")
    return name


def _call(operation: str, **kwargs: Any) -> Any:
    try:
        return getattr(aws.s3(), operation)(Bucket=bucket(), **kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            raise UploadGone(str(exc)) from exc
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status >= 500 or status == 429 or exc.response.get("Error", {}).get("Code") == "SlowDown":
            raise errors.Retryable("The file store is busy") from exc
        raise
    except BotoCoreError as exc:
        raise errors.Retryable("The file store did not answer") from exc


def put(key: str, body: bytes, extension: str) -> int:
    """A whole file in one PutObject; its size."""
    _call("put_object", Key=key, Body=body, ContentType=CONTENT_TYPES[extension])
    return len(body)


def begin(key: str, extension: str) -> str:
    """Open a multipart upload; its id."""
    return str(_call("create_multipart_upload", Key=key, ContentType=CONTENT_TYPES[extension])["UploadId"])


def part(key: str, upload_id: str, number: int, body: bytes) -> None:
    """Upload part `number` (1-10,000); uploading a number again replaces that part."""
    _call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body)


def _parts(key: str, upload_id: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"Key": key, "UploadId": upload_id}
    while True:
        page = _call("list_parts", **request)
        yield from page.get("Parts") or []
        if not page.get("IsTruncated"):
            return
        request["PartNumberMarker"] = page["NextPartNumberMarker"]


def complete(key: str, upload_id: str, parts: int) -> int:
    """Assemble parts 1..`parts` (as listed by S3: nothing is kept between chunks but their number);
    the file's size. UploadGone when an earlier attempt completed it already."""
    listed = sorted(_parts(key, upload_id), key=lambda p: int(p["PartNumber"]))
    numbers = [int(p["PartNumber"]) for p in listed]
    if numbers != list(range(1, parts + 1)):
        raise RuntimeError(f"upload of {key} holds parts {numbers[:5]}..., not 1..{parts}")
    _call(
        "complete_multipart_upload",
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": int(p["PartNumber"]), "ETag": p["ETag"]} for p in listed]},
    )
    return sum(int(p["Size"]) for p in listed)


def upload_file(key: str, handle: BinaryIO, extension: str, part_bytes: int) -> int:
    """A file from disk: one put when it fits in a part, else a multipart upload read part by part
    (never the whole file in memory); its size."""
    first = handle.read(part_bytes)
    more = handle.read(part_bytes)
    if not more:
        return put(key, first, extension)
    upload_id = begin(key, extension)
    number = 1
    for body in (first, more):
        part(key, upload_id, number, body)
        number += 1
    while body := handle.read(part_bytes):
        part(key, upload_id, number, body)
        number += 1
    return complete(key, upload_id, number - 1)


def abort(key: str, upload_id: str) -> None:
    try:
        _call("abort_multipart_upload", Key=key, UploadId=upload_id)
    except UploadGone:
        pass


def size(key: str) -> int | None:
    """The stored file's size, or None when there is none."""
    try:
        return int(_call("head_object", Key=key)["ContentLength"])
    except ClientError as exc:
        if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) == 404:
            return None
        raise


def presign(key: str, filename: str, ttl_seconds: int) -> str:
    """An HTTPS URL (locally: the endpoint's) that downloads the file for `ttl_seconds`; signing
    makes no call."""
    return str(
        aws.s3().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket(),
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=ttl_seconds,
        )
    )
