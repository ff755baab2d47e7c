"""Cost of one presigned GET URL: `Storage.presign_get` (app/sigv4.py) against botocore's
`generate_presigned_url` for the same object and parameters, in the same run. Not a test:
it prints figures.

    .venv/bin/python bench/presign.py

No server is contacted (signing is local). Three ways, interleaved in rounds so drift hits
all alike, each over the same 1,000 distinct keys and filenames:
- botocore: `client.generate_presigned_url("get_object", ...)`, what Storage did before;
- Storage.presign_get: the whole method (Content-Disposition, window, credentials, sign);
- app.sigv4.presign_get: the signing alone (parameters encoded beforehand).
Goal: <= 50 us per URL for Storage.presign_get. Times are this process's CPU time
(`time.process_time`): signing is CPU-bound, and on a shared machine wall time also counts
the turns of other processes.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import sigv4  # noqa: E402
from app.config import Settings  # noqa: E402
from app.storage import Storage, _attachment, _get_query  # noqa: E402

URLS, ROUNDS = 1_000, 15


def main() -> None:
    storage = Storage(Settings().with_overrides({"s3_endpoint_url": "http://127.0.0.1:9000"}))
    target = storage.direct_get
    assert target is not None, "Storage fell back to botocore"
    credentials = storage._credentials.get_frozen_credentials()
    ttl = storage.settings.download_url_ttl_seconds
    org, site = uuid.uuid4(), uuid.uuid4()
    objects = [(f"orgs/{org}/sites/{site}/assets/{uuid.uuid4()}", f"photo {n} été.jpg",
                "image/jpeg") for n in range(URLS)]

    def botocore_urls() -> None:
        for key, filename, content_type in objects:
            storage.client.generate_presigned_url("get_object", Params={
                "Bucket": storage.bucket, "Key": key,
                "ResponseContentDisposition": _attachment(filename),
                "ResponseContentType": content_type}, ExpiresIn=ttl)

    def storage_urls() -> None:
        for key, filename, content_type in objects:
            storage.presign_get(key, filename, content_type)

    queries = [(key, _get_query(filename, content_type))
               for key, filename, content_type in objects]
    now = int(time.time())

    def signing_only() -> None:
        for key, query in queries:
            sigv4.presign_get(target, key, query, credentials, signed_at=now, expires=ttl)

    cases = {"botocore generate_presigned_url": botocore_urls,
             "Storage.presign_get (app.sigv4)": storage_urls,
             "app.sigv4.presign_get alone": signing_only}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm up
        fn()
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            start = time.process_time()
            fn()
            samples[name].append((time.process_time() - start) / URLS * 1e6)

    base = statistics.median(samples["botocore generate_presigned_url"])
    print(f"\n{URLS:,} distinct objects x {ROUNDS} rounds; CPU us per URL\n")
    print(f"{'case':<36} {'p50 us':>8} {'min us':>8} {'vs botocore':>12}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:<36} {p50:8.1f} {min(values):8.1f} {p50 / base:11.3f}x")
    print("\ngoal: Storage.presign_get <= 50 us per URL")


if __name__ == "__main__":
    main()
