"""The exports bucket and queue in template.yaml: encrypted, never public, TLS only, files expiring
after a parameter's days; a DLQ with its alarm; the URL's TTL and the per-org limit parameters
reaching the functions that use them; and the local stack's bucket made from the same template."""

from __future__ import annotations

from typing import Any

import boto3

from conftest import REGION, template
from tools import cfn


def props(logical_id: str) -> dict[str, Any]:
    return dict(template()["Resources"][logical_id]["Properties"])


def test_the_bucket_is_encrypted_private_tls_only_and_expires_its_files() -> None:
    bucket = props("ExportsBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(bucket["PublicAccessBlockConfiguration"][k] is True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"
    ))  # fmt: skip
    (expiry,) = bucket["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == {"Ref": "ExportExpiryDays"}
    assert template()["Parameters"]["ExportExpiryDays"]["Default"] == 7
    (deny,) = props("ExportsBucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_queue_has_a_dead_letter_queue_and_an_alarm() -> None:
    queue = props("ExportQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ExportDLQ", "Arn"]}
    alarm = props("ExportDLQAlarm")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ExportDLQ", "QueueName"]}


def test_the_parameters_reach_the_functions() -> None:
    for function in ("ExportsApiFunction", "SheepExportsFunction"):
        env = cfn.function_env(template(), function, {})
        assert env["EXPORT_URL_TTL_SECONDS"] == "900" and env["EXPORT_MAX_CONCURRENT"] == "3"
        assert env["EXPORTS_BUCKET"] == "exportsbucket"


def test_the_local_bucket_is_made_as_the_template_says(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    assert cfn.create_buckets(s3, template()) == {"ExportsBucket": "exportsbucket"}
    rules = s3.get_bucket_lifecycle_configuration(Bucket="exportsbucket")["Rules"]
    assert rules[0]["Expiration"] == {"Days": 7}
    assert s3.get_public_access_block(Bucket="exportsbucket")["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    encryption = s3.get_bucket_encryption(Bucket="exportsbucket")["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
