"""Regenerates botocore_vectors.json, the botocore test vectors of sigv4_test.go.

Run from this directory with a Python that has botocore installed:

    python3 gen_botocore_vectors.py > botocore_vectors.json

Each vector is a request as botocore would put it on the wire (request line,
headers, body), signed by botocore's own SigV4Auth at a fixed clock. Nothing is
sent: a before-send hook captures the prepared request and answers 200 {}.
User-Agent, which botocore does not sign, is left out. The Go tests replay the
requests over TCP, so Python is not needed to run them.
"""

import base64
import datetime
import json
import os
import sys

os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

SIGNING_TIME = datetime.datetime(2026, 3, 4, 5, 6, 7)
ENDPOINT = "http://localhost:9000"
ACCESS_KEY = "AKIDBOTOCOREEXAMPLE"
SECRET_KEY = "botocore/Secret+Key/EXAMPLEKEY0123456789"
SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLE//session+token=="

botocore.auth.get_current_datetime = lambda remove_tzinfo=True: SIGNING_TIME


class _Body:
    def stream(self, **kwargs):
        yield b"{}"


def _vector(name, service, prepared):
    parts = prepared.url.split("/", 3)
    target = "/" + (parts[3] if len(parts) > 3 else "")
    headers = [["Host", botocore.auth._host_from_url(prepared.url)]]
    for key, value in prepared.headers.items():
        if key.lower() == "user-agent":
            continue  # unsigned, and it describes the generating machine
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        headers.append([key, value])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {
        "name": name,
        "service": service,
        "region": "us-east-1",
        "accessKeyID": ACCESS_KEY,
        "secretKey": SECRET_KEY,
        "signingTime": SIGNING_TIME.strftime("%Y%m%dT%H%M%SZ"),
        "method": prepared.method,
        "target": target,
        "headers": headers,
        "bodyBase64": base64.b64encode(body).decode("ascii"),
    }


def _client(service, token=None):
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )
    captured = []

    def capture(request, **kwargs):
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _Body())

    client.meta.events.register("before-send", capture)
    return client, captured


def main():
    vectors = []

    client, captured = _client("lambda")
    client.invoke(
        FunctionName="arn:aws:lambda:us-east-1:000000000000:function:foo",
        Qualifier="live",
        InvocationType="RequestResponse",
        ClientContext=base64.b64encode(b'{"custom": {"k": "v"}}').decode(),
        Payload=b'{"hello": "world  with  spaces"}',
    )
    vectors.append(_vector("lambda Invoke full ARN", "lambda", captured[-1]))

    client.get_function(
        FunctionName="arn:aws:lambda:us-east-1:000000000000:function:foo:1"
    )
    vectors.append(_vector("lambda GetFunction versioned ARN", "lambda", captured[-1]))

    client, captured = _client("lambda", token=SESSION_TOKEN)
    client.list_functions(
        Marker="next page+token/with:special$chars",
        MaxItems=5,
        FunctionVersion="ALL",
    )
    vectors.append(_vector("lambda ListFunctions session token", "lambda", captured[-1]))

    client, captured = _client("events")
    client.put_events(
        Entries=[{"Source": "lamina.test", "DetailType": "t", "Detail": "{}"}]
    )
    vectors.append(_vector("events PutEvents JSON 1.1", "events", captured[-1]))

    # botocore removes dot segments and empty segments from the path before
    # signing it, unlike aws-sdk-go-v2; this request exercises that.
    request = AWSRequest(
        method="GET",
        url=ENDPOINT + "/2015-03-31/functions/./foo//configuration/../policy/",
        headers={"X-Custom": "  padded   value  "},
    )
    botocore.auth.SigV4Auth(
        Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1"
    ).add_auth(request)
    vectors.append(_vector("raw SigV4Auth dot segments", "lambda", request.prepare()))

    json.dump(
        {"generator": "botocore " + botocore.__version__, "vectors": vectors},
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
