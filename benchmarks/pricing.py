"""AWS list prices the cost meter uses — the ONE place they are kept.

Region us-east-1, on-demand, no free tier, no volume tiers beyond the first. Taken from the public
pricing pages below; checked 2026-11-27 against the figures published since the last change each
page lists (DynamoDB's on-demand throughput was halved on 2024-11-01). When AWS changes a price,
change it here and re-run ``make bench`` (the meter prints this date under its tables).

Sources:
  API Gateway   https://aws.amazon.com/api-gateway/pricing/          (HTTP APIs, first 300 M/month)
  Lambda        https://aws.amazon.com/lambda/pricing/               (Arm, first 6 B GB-s/month)
  DynamoDB      https://aws.amazon.com/dynamodb/pricing/on-demand/   (Standard table class)
  EventBridge   https://aws.amazon.com/eventbridge/pricing/          (custom events, 64 KB chunks)
  SNS           https://aws.amazon.com/sns/pricing/                  (standard topics: $0.50 per million
                requests, each 64 KB chunk of published data one request — a PublishBatch of ten
                small messages is one; notification deliveries to SQS queues: no charge; message
                filtering on attributes: no charge — payload-based filtering is billed, not used)
                https://docs.aws.amazon.com/sns/latest/dg/sns-batch-api-actions.html (PublishBatch:
                ≤ 10 messages, ≤ 256 KiB in total, authorised as sns:Publish)
  SQS           https://aws.amazon.com/sqs/pricing/                  (standard queue, 64 KB chunks)
  S3            https://aws.amazon.com/s3/pricing/                   (S3 Standard, first 50 TB)
  Data Firehose https://aws.amazon.com/firehose/pricing/             (Direct PUT, 5 KB steps per record)
  Secrets Mgr   https://aws.amazon.com/secrets-manager/pricing/
  CloudWatch    https://aws.amazon.com/cloudwatch/pricing/           (Logs standard ingestion/storage;
                each log event is billed with 26 bytes of overhead)
  X-Ray         https://aws.amazon.com/xray/pricing/                 ($5.00 per million traces recorded)
"""

from __future__ import annotations

PRICES_AS_OF = "2026-11-27"
REGION = "us-east-1"

# USD per unit; the unit is in the key's comment.
PRICES: dict[str, float] = {
    "apigateway.http_request": 1.00 / 1e6,  # per request, per 512 KB of payload
    "lambda.request": 0.20 / 1e6,  # per invocation
    "lambda.gb_second_arm": 0.0000133334,  # per GB-second (Arm), billed per 1 ms
    "dynamodb.write_request_unit": 0.625 / 1e6,  # per WRU (1 KB; x2 in a transaction)
    "dynamodb.read_request_unit": 0.125 / 1e6,  # per RRU (4 KB strong; half eventual; x2 transactional)
    "dynamodb.storage_gb_month": 0.25,  # per GB-month (items + 100 B overhead each)
    "eventbridge.event": 1.00 / 1e6,  # per PutEvents entry, per 64 KB chunk
    "sqs.request": 0.40 / 1e6,  # per request, per 64 KB chunk (EventBridge deliveries included)
    "sns.request": 0.50 / 1e6,  # per Publish/PublishBatch request, per 64 KB chunk of its payload
    "sns.sqs_delivery": 0.0,  # per SNS → SQS delivery: no charge (attribute filtering: none either)
    "s3.put_request": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3.get_request": 0.0004 / 1000,  # GET, SELECT, HEAD
    "s3.storage_gb_month": 0.023,
    "firehose.gb_ingested": 0.029,  # per GB, each record rounded up to 5 KB
    "secretsmanager.api_call": 0.05 / 10_000,
    "logs.gb_ingested": 0.50,
    "logs.storage_gb_month": 0.03,
    "xray.trace_recorded": 5.00 / 1e6,  # per trace recorded (retrievals/scans not priced: ops reads)
}

# Billing granularity the meter applies (bytes).
SQS_CHUNK = 64 * 1024
EVENTBRIDGE_CHUNK = 64 * 1024
SNS_CHUNK = 64 * 1024
APIGATEWAY_CHUNK = 512 * 1024
FIREHOSE_RECORD_STEP = 5 * 1024
LOG_EVENT_OVERHEAD = 26  # CloudWatch Logs: bytes billed per log event on top of its message
# Lambda's platform lines per invocation when the function's system log level lets them through
# (TEXT format, or JSON with SystemLogLevel INFO/DEBUG): START, END and REPORT (with its XRAY line).
LAMBDA_PLATFORM_LOG_BYTES = 90 + 60 + 330
# X-Ray's default sampling rule records the first request each second and 5 % of the rest: at the
# rates a million events a month and more imply, about 5 % of invocations start a recorded trace.
XRAY_SAMPLED_FRACTION = 0.05
DYNAMODB_ITEM_OVERHEAD = 100  # storage bytes per item (and per index entry)
GB = 1024**3


def price(key: str) -> float:
    return PRICES[key]
